//! The checks before a restore or a drill starts: room on the host's disk
//! for what it will write, and time for it to finish before its target
//! leaves the window. Pure: the worker supplies the figures.

use chrono::{DateTime, Duration, Utc};

use super::eta::{Work, size_words, words};

/// Why a job waits: its host has too little disk free.
pub const INSUFFICIENT_DISK: &str = "insufficient_disk";

/// Why a job cannot run at all: it would not finish before its target
/// leaves the window, and the backup it needs would be expired under it.
pub const TARGET_LEAVES_WINDOW: &str = "target_leaves_window";

/// Room kept free beyond what a restore writes: a tenth more, and at least
/// this much, for the server's own files and logs.
pub const MARGIN_BYTES: i64 = 256 * 1024 * 1024;

/// What a restore needs free on its host: the backup laid down, the log
/// fetched to replay it, and a margin.
pub fn space_needed(work: Work) -> i64 {
    let written = work
        .backup_bytes
        .max(0)
        .saturating_add(work.wal_bytes.max(0));
    written.saturating_add((written / 10).max(MARGIN_BYTES))
}

/// "local has 1.4 GB free; this restore needs 2.1 GB (1.8 GB of backup,
/// 120.0 MB of log and a margin). It starts once there is room."
pub fn disk_refusal(host: &str, needed: i64, free: i64, work: Work) -> String {
    format!(
        "{host} has {} free; this restore needs {} ({} of backup, {} of log and a margin). \
         It starts as soon as a restore host has room.",
        size_words(free),
        size_words(needed),
        size_words(work.backup_bytes),
        size_words(work.wal_bytes),
    )
}

/// Why a job waits: no restore host is running to take it.
pub const NO_RESTORE_HOST: &str = "no_restore_host";

/// "No restore host is running …": the wait when every host is gone.
pub fn no_host_refusal() -> String {
    "No restore host is running at the moment: the restore starts as soon as one is back."
        .to_string()
}

/// The wait when hosts run but none has room, naming each with its room.
pub fn no_room_anywhere(hosts: &[(String, i64)], needed: i64, work: Work) -> String {
    let rooms = hosts
        .iter()
        .map(|(name, free)| format!("{name} has {} free", size_words(*free)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "No restore host has room: {rooms}; this restore needs {} ({} of backup, {} of log and \
         a margin). It starts as soon as a restore host has room.",
        size_words(needed),
        size_words(work.backup_bytes),
        size_words(work.wal_bytes),
    )
}

/// Refuses a run that would still be going when its target leaves the
/// window: `expected` is the whole run's estimate, `closes` the moment the
/// target falls out of retention.
pub fn time_check(
    now: DateTime<Utc>,
    expected: Duration,
    closes: DateTime<Utc>,
) -> Result<(), String> {
    if now + expected <= closes {
        return Ok(());
    }
    Err(format!(
        "A restore of this cluster takes about {}, but the target leaves the backup window \
         in {}: the backup it needs would expire before the restore could finish. Choose a \
         later moment.",
        words(expected),
        words((closes - now).max(Duration::zero()))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const MB: i64 = 1024 * 1024;

    #[test]
    fn a_wait_for_room_names_every_host_and_its_room() {
        let work = Work {
            backup_bytes: 3 * 1024 * MB,
            wal_bytes: 100 * MB,
        };
        let text = no_room_anywhere(
            &[("r1".into(), 512 * MB), ("r2".into(), 1024 * MB)],
            space_needed(work),
            work,
        );
        assert!(text.starts_with("No restore host has room: r1 has 512.0 MB free, r2 has 1.0 GB free; this restore needs 3.4 GB (3.0 GB of backup, 100.0 MB of log"), "{text}");
    }

    #[test]
    fn a_restore_needs_its_backup_its_log_and_a_margin() {
        let small = Work {
            backup_bytes: 100 * MB,
            wal_bytes: 20 * MB,
        };
        assert_eq!(space_needed(small), 120 * MB + MARGIN_BYTES);
        let large = Work {
            backup_bytes: 9000 * MB,
            wal_bytes: 1000 * MB,
        };
        assert_eq!(space_needed(large), 11_000 * MB);
        let said = disk_refusal("r1", space_needed(small), 50 * MB, small);
        assert!(
            said.starts_with("r1 has 50.0 MB free; this restore needs 376.0 MB"),
            "{said}"
        );
        assert!(said.contains("starts as soon as"));
    }

    #[test]
    fn a_run_must_end_before_its_target_leaves_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        assert!(time_check(now, Duration::minutes(10), now + Duration::hours(1)).is_ok());
        assert!(time_check(now, Duration::hours(1), now + Duration::hours(1)).is_ok());
        let refused = time_check(now, Duration::hours(2), now + Duration::hours(1)).unwrap_err();
        assert!(refused.contains("takes about 2 h"), "{refused}");
        assert!(refused.contains("in 1 h"), "{refused}");
        assert!(time_check(now, Duration::seconds(1), now - Duration::hours(1)).is_err());
    }
}
