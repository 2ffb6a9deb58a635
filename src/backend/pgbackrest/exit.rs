//! What a failed pgBackRest command means for the step that ran it.
//!
//! Exit codes are pgBackRest's error codes. Code 75 needs a second look:
//! with an explicit `--set`, an unreadable repository also ends in
//! `[075] backup set … is not valid`, after a `repoN:` warning saying why.

use crate::backend::StepError;
use crate::domain::catalog::Zone;

/// `[029]` the target or backup set selection was refused.
pub const FORMAT: i32 = 29;
/// `[038]` a postmaster runs in the target directory.
pub const POSTMASTER_RUNNING: i32 = 38;
/// `[040]` the target directory is not empty.
pub const PATH_NOT_EMPTY: i32 = 40;
/// `[041]` a file could not be opened (the repository is unreadable).
pub const FILE_OPEN: i32 = 41;
/// `[050]` another pgBackRest command holds the stanza's lock.
pub const LOCK_ACQUIRE: i32 = 50;
/// `[075]` no backup set fits (target before every backup, or set unreadable).
pub const BACKUP_SET_INVALID: i32 = 75;
/// `[104]` one or more repositories failed.
pub const REPOS_FAILED: i32 = 104;

/// I/O errors reading a repository: the zone is (for now) out of reach.
const READ_ERRORS: [i32; 6] = [FILE_OPEN, 42, 43, 53, 55, REPOS_FAILED];

fn repo_complaint(stderr: &str, zone: Zone) -> bool {
    stderr.contains(&format!("repo{}: [", zone.index() + 1))
}

/// Maps a failed `pgbackrest restore` from `zone` to a step error.
pub fn restore_failure(code: Option<i32>, zone: Zone, reason: &str, stderr: &str) -> StepError {
    let unreadable = || {
        StepError::retryable(
            "zone_unavailable",
            format!("the backups in zone {zone} cannot be read right now: {reason}"),
        )
    };
    match code {
        None => StepError::retryable(
            "restore_killed",
            format!("pgBackRest was stopped before it finished restoring from {zone}"),
        ),
        Some(BACKUP_SET_INVALID) if repo_complaint(stderr, zone) => unreadable(),
        Some(c) if READ_ERRORS.contains(&c) => unreadable(),
        Some(BACKUP_SET_INVALID) => StepError::fatal(
            "backup_not_found",
            format!("zone {zone} holds no backup that can reach the target: {reason}"),
        ),
        Some(FORMAT) => StepError::fatal(
            "target_rejected",
            format!("pgBackRest refused the target time: {reason}"),
        ),
        Some(POSTMASTER_RUNNING) => StepError::retryable(
            "server_running",
            format!("a server still runs in the new cluster's directory: {reason}"),
        ),
        Some(PATH_NOT_EMPTY) => StepError::retryable(
            "directory_not_empty",
            format!("the new cluster's directory was not empty: {reason}"),
        ),
        Some(LOCK_ACQUIRE) => StepError::retryable(
            "repository_busy",
            format!("another pgBackRest command holds the lock: {reason}"),
        ),
        Some(_) if reason.contains("CryptoError") => StepError::fatal(
            "repository_cipher",
            format!("the backups in zone {zone} cannot be decrypted: {reason}"),
        ),
        Some(c) => StepError::retryable(
            "restore_failed",
            format!("pgBackRest failed with code {c} restoring from {zone}: {reason}"),
        ),
    }
}

/// Whether a restore from a repository that reads fine failed on the
/// backup's own files: one missing (`[055]`), or one that does not check,
/// decompress or decrypt (pgBackRest's checksum, format and crypto
/// errors). Such a copy is damaged: reading it again cannot help.
pub fn damaged_backup(code: Option<i32>, stderr: &str) -> bool {
    const SIGNS: [&str; 5] = [
        "missing file",
        "ChecksumError",
        "FormatError",
        "CryptoError",
        "checksum",
    ];
    code.is_some() && (code == Some(55) || SIGNS.iter().any(|s| stderr.contains(s)))
}

/// The error of a restore from a damaged copy: the snapshot and zone named.
pub fn damaged(snapshot: &str, zone: Zone, reason: &str) -> StepError {
    StepError::fatal(
        "backup_damaged",
        format!(
            "snapshot {snapshot} in {zone} is damaged: a file of it is missing or fails its check ({reason})"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: &StepError) -> (&str, bool) {
        match e {
            StepError::Retryable { code, .. } => (code.as_str(), true),
            StepError::Fatal { code, .. } => (code.as_str(), false),
            StepError::Interrupted => ("interrupted", false),
        }
    }

    #[test]
    fn exit_codes_map_to_typed_errors() {
        let z = Zone::Az2;
        let cases = [
            (Some(75), "", ("backup_not_found", false)),
            (Some(29), "", ("target_rejected", false)),
            (Some(38), "", ("server_running", true)),
            (Some(40), "", ("directory_not_empty", true)),
            (Some(41), "", ("zone_unavailable", true)),
            (Some(104), "", ("zone_unavailable", true)),
            (Some(50), "", ("repository_busy", true)),
            (Some(99), "", ("restore_failed", true)),
            (None, "", ("restore_killed", true)),
        ];
        for (code, stderr, expected) in cases {
            assert_eq!(
                code_of(&restore_failure(code, z, "why", stderr)),
                expected,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_mangled_file_is_a_damaged_backup() {
        assert!(damaged_backup(
            Some(55),
            "ERROR: [055]: unable to open missing file '/f/zones/az2/backup/s/x/pg_data/base/1/1259.zst' for read"
        ));
        assert!(damaged_backup(
            Some(39),
            "ERROR: [039]: ChecksumError: expected 1 got 2"
        ));
        assert!(!damaged_backup(Some(41), "ERROR: [041]: Permission denied"));
        assert!(
            !damaged_backup(None, "missing file"),
            "a killed restore is no finding"
        );
        let e = damaged("20261125-130830F", Zone::Az2, "[055]");
        assert_eq!(code_of(&e), ("backup_damaged", false));
        assert!(e.to_string().contains("in az2 is damaged"));
    }

    #[test]
    fn an_invalid_set_in_an_unreadable_repository_is_a_zone_outage() {
        let stderr = "WARN: repo2: [FileOpenError] unable to load info file \
                      '/srv/fleet/zones/az2/backup/s/backup.info': [13] Permission denied\n\
                      ERROR: [075]: backup set 20261125-130830F is not valid";
        let e = restore_failure(Some(75), Zone::Az2, "not valid", stderr);
        assert_eq!(code_of(&e), ("zone_unavailable", true));
        // A complaint about another repository does not excuse this one.
        let e = restore_failure(Some(75), Zone::Az3, "not valid", stderr);
        assert_eq!(code_of(&e), ("backup_not_found", false));
    }
}
