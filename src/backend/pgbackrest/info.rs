//! Reading what the repositories hold: `pgbackrest info --output=json` for
//! one stanza, and `pg_waldump` for when the newest archived transaction
//! ended. Pure parsing, tested on captured output.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::catalog::{Catalog, LogSpan, Snapshot, Zone, ZoneSet};

#[derive(Debug, Deserialize)]
struct StanzaJson {
    name: String,
    #[serde(default)]
    archive: Vec<ArchiveJson>,
    #[serde(default)]
    backup: Vec<BackupJson>,
    #[serde(default)]
    repo: Vec<RepoJson>,
}

#[derive(Debug, Deserialize)]
struct DbRef {
    id: u32,
    #[serde(rename = "repo-key")]
    repo_key: usize,
}

#[derive(Debug, Deserialize)]
struct ArchiveJson {
    database: DbRef,
    min: Option<String>,
    max: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Stamps {
    start: i64,
    stop: i64,
}

#[derive(Debug, Deserialize)]
struct WalRange {
    start: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BackupJson {
    label: String,
    #[serde(default)]
    error: Option<bool>,
    database: DbRef,
    timestamp: Stamps,
    archive: Option<WalRange>,
    #[serde(default)]
    info: Option<SizeJson>,
}

#[derive(Debug, Deserialize)]
struct SizeJson {
    /// What the backup restores to, uncompressed.
    size: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RepoJson {
    key: usize,
    status: StatusJson,
}

#[derive(Debug, Deserialize)]
struct StatusJson {
    code: i64,
    message: String,
}

/// A completed backup in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub label: String,
    pub started_at: DateTime<Utc>,
    /// pgBackRest's stop time, whole seconds rounded down.
    pub stopped_at: DateTime<Utc>,
    /// The first WAL segment the backup needs.
    pub wal_start: Option<String>,
    /// What it restores to on disk, in bytes.
    #[serde(default)]
    pub size: Option<i64>,
}

/// One repository (zone) of one stanza, as `info` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub zone: Zone,
    /// pgBackRest could read it: status 0 (ok) or 2 (no valid backups yet).
    pub readable: bool,
    pub status: String,
    pub backups: Vec<Backup>,
    /// Oldest and newest archived WAL segment of the current database.
    pub wal: Option<(String, String)>,
}

/// What `info` says about one stanza, repository by repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaInfo {
    pub repos: Vec<Repo>,
}

/// What a zone held when it was last readable, with where its log ended:
/// kept so an unreadable zone's backups still show, as held in a zone that
/// is offline, instead of vanishing from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenZone {
    pub backups: Vec<Backup>,
    pub wal: Option<(String, String)>,
    pub log_end: Option<DateTime<Utc>>,
}

fn unix(seconds: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("bad timestamp {seconds}"))
}

/// Parses `pgbackrest --stanza=S --output=json info`.
pub fn parse_info(json: &str, stanza: &str) -> Result<StanzaInfo, String> {
    let stanzas: Vec<StanzaJson> = serde_json::from_str(json)
        .map_err(|e| format!("unexpected pgbackrest info output: {e}"))?;
    let found = stanzas
        .into_iter()
        .find(|s| s.name == stanza)
        .ok_or_else(|| format!("pgbackrest info does not list stanza {stanza}"))?;
    let mut repos = Vec::new();
    for repo in &found.repo {
        let Some(zone) = repo.key.checked_sub(1).and_then(Zone::from_index) else {
            continue;
        };
        // After a stanza-upgrade several database ids exist: the newest is current.
        let current_db = found
            .archive
            .iter()
            .filter(|a| a.database.repo_key == repo.key)
            .map(|a| a.database.id)
            .max();
        let wal = found
            .archive
            .iter()
            .filter(|a| a.database.repo_key == repo.key && Some(a.database.id) == current_db)
            .find_map(|a| Some((a.min.clone()?, a.max.clone()?)));
        let mut backups = Vec::new();
        for b in found
            .backup
            .iter()
            .filter(|b| b.database.repo_key == repo.key && b.error != Some(true))
        {
            backups.push(Backup {
                label: b.label.clone(),
                started_at: unix(b.timestamp.start)?,
                stopped_at: unix(b.timestamp.stop)?,
                wal_start: b.archive.as_ref().and_then(|a| a.start.clone()),
                size: b.info.as_ref().and_then(|i| i.size),
            });
        }
        repos.push(Repo {
            zone,
            readable: matches!(repo.status.code, 0 | 2),
            status: repo.status.message.clone(),
            backups,
            wal,
        });
    }
    Ok(StanzaInfo { repos })
}

/// The newest archive of a stanza (`15-2` over `15-1`), from the JSON of
/// `repo-ls archive/<stanza>`.
pub fn newest_archive_id(json: &str) -> Option<String> {
    let entries: BTreeMap<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    entries
        .iter()
        .filter(|(_, e)| e["type"] == "path")
        .filter_map(|(name, _)| {
            let (version, id) = name.split_once('-')?;
            version.parse::<u32>().ok()?;
            Some((id.parse::<u32>().ok()?, name.clone()))
        })
        .max()
        .map(|(_, name)| name)
}

/// The first file named in the JSON of `repo-ls`.
pub fn first_file(json: &str) -> Option<String> {
    let entries: BTreeMap<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    entries
        .into_iter()
        .find(|(_, e)| e["type"] == "file")
        .map(|(name, _)| name)
}

impl StanzaInfo {
    pub fn readable_zones(&self) -> ZoneSet {
        self.repos
            .iter()
            .filter(|r| r.readable)
            .fold(ZoneSet::NONE, |set, r| set.with(r.zone))
    }

    pub fn repo(&self, zone: Zone) -> Option<&Repo> {
        self.repos.iter().find(|r| r.zone == zone)
    }

    /// Fills the unreadable zones with what they held when last seen, and
    /// returns what to remember of the readable ones (with `log_end`).
    pub fn merge_last_seen(
        &mut self,
        seen: &BTreeMap<Zone, SeenZone>,
        log_end: &mut BTreeMap<Zone, DateTime<Utc>>,
    ) -> BTreeMap<Zone, SeenZone> {
        let mut now_seen = seen.clone();
        for repo in &mut self.repos {
            if repo.readable {
                now_seen.insert(
                    repo.zone,
                    SeenZone {
                        backups: repo.backups.clone(),
                        wal: repo.wal.clone(),
                        log_end: log_end.get(&repo.zone).copied(),
                    },
                );
            } else if let Some(old) = seen.get(&repo.zone) {
                repo.backups = old.backups.clone();
                repo.wal = old.wal.clone();
                if let Some(end) = old.log_end {
                    log_end.insert(repo.zone, end);
                }
            }
        }
        now_seen
    }

    /// The newest archived segment of each readable zone.
    pub fn newest_segments(&self) -> BTreeMap<Zone, String> {
        self.repos
            .iter()
            .filter(|r| r.readable)
            .filter_map(|r| Some((r.zone, r.wal.as_ref()?.1.clone())))
            .collect()
    }

    /// The catalog the desk reasons with. Unreadable zones contribute what
    /// `merge_last_seen` filled in, if anything; they are offline, so no
    /// restore is planned from them.
    ///
    /// Each repository's backups are separate snapshots held in one zone:
    /// pgBackRest backs up each repository on its own, so the same label
    /// never names one copy in several zones. A snapshot counts as finished
    /// one second after pgBackRest's stop time, which is rounded down to
    /// the second: the backup is consistent only once its stop returned.
    ///
    /// A zone's log runs from the start of its oldest backup whose WAL it
    /// still holds to `log_end(zone)`: the moment just before the newest
    /// transaction end archived there, the last moment recovery can stop at.
    pub fn catalog(&self, log_end: &BTreeMap<Zone, DateTime<Utc>>) -> Catalog {
        let mut catalog = Catalog::default();
        for repo in &self.repos {
            for backup in &repo.backups {
                catalog.snapshots.push(Snapshot {
                    id: backup.label.clone(),
                    started_at: backup.started_at,
                    finished_at: backup.stopped_at + Duration::seconds(1),
                    zones: ZoneSet::of(&[repo.zone]),
                });
            }
            let (Some((min, _)), Some(to)) = (&repo.wal, log_end.get(&repo.zone)) else {
                continue;
            };
            let from = repo
                .backups
                .iter()
                .filter(|b| b.wal_start.as_ref().is_some_and(|start| start >= min))
                .map(|b| b.started_at)
                .min();
            if let Some(from) = from.filter(|from| from <= to) {
                catalog.log.push(LogSpan {
                    from,
                    to: *to,
                    zones: ZoneSet::of(&[repo.zone]),
                });
            }
        }
        catalog
    }
}

/// WAL segments are 16 MiB (PostgreSQL's default, and the fleet's).
pub const SEGMENT_BYTES: i64 = 16 * 1024 * 1024;

/// How many segments from `first` to `last`, both counted, on one timeline.
pub fn segments_between(first: &str, last: &str) -> Option<i64> {
    let number = |segment: &str| -> Option<i64> {
        if segment.len() != 24 {
            return None;
        }
        let log = i64::from_str_radix(&segment[8..16], 16).ok()?;
        let seg = i64::from_str_radix(&segment[16..], 16).ok()?;
        Some(log * 0x100 + seg)
    };
    Some((number(last)? - number(first)? + 1).max(0))
}

/// The segment before `segment` on the same timeline (16 MB segments).
pub fn previous_segment(segment: &str) -> Option<String> {
    if segment.len() != 24 {
        return None;
    }
    let timeline = &segment[..8];
    let log = u32::from_str_radix(&segment[8..16], 16).ok()?;
    let seg = u32::from_str_radix(&segment[16..], 16).ok()?;
    let (log, seg) = match seg {
        0 => (log.checked_sub(1)?, 0xFF),
        n => (log, n - 1),
    };
    Some(format!("{timeline}{log:08X}{seg:08X}"))
}

/// The end time of the newest transaction (commit or abort) in the output
/// of `pg_waldump --rmgr=Transaction`, run with `TZ=UTC`.
pub fn last_transaction_end(waldump: &str) -> Option<DateTime<Utc>> {
    const KINDS: [&str; 4] = ["COMMIT_PREPARED ", "ABORT_PREPARED ", "COMMIT ", "ABORT "];
    waldump
        .lines()
        .filter_map(|line| {
            let desc = line.split_once("desc: ")?.1;
            let rest = KINDS.iter().find_map(|k| desc.strip_prefix(k))?;
            // e.g. "2026-11-25 13:11:30.306213 UTC; inval msgs: …"
            let stamp = rest.split(" UTC").next()?;
            NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_archive_and_a_segment_s_file_come_from_repo_ls() {
        let dirs = r#"{".":{"type":"path"},"15-1":{"type":"path"},"15-2":{"type":"path"},"archive.info":{"type":"file","size":370,"time":1}}"#;
        assert_eq!(newest_archive_id(dirs).as_deref(), Some("15-2"));
        assert_eq!(newest_archive_id(r#"{".":{"type":"path"}}"#), None);
        let files = r#"{"000000010000000000000003-5a1d5c8f2e8f0b6d9a7c3e1b2f4a6c8d0e2f4a6b.zst":{"type":"file","size":1024,"time":1}}"#;
        assert_eq!(
            first_file(files).as_deref(),
            Some("000000010000000000000003-5a1d5c8f2e8f0b6d9a7c3e1b2f4a6c8d0e2f4a6b.zst")
        );
        assert_eq!(first_file("{}"), None);
    }
    use chrono::TimeZone;

    const THREE: &str = include_str!("testdata/info-three-repos.json");
    const AZ1_DOWN: &str = include_str!("testdata/info-az1-unreadable.json");
    const ALL_DOWN: &str = include_str!("testdata/info-all-unreadable.json");
    const WALDUMP: &str = include_str!("testdata/waldump-transactions.txt");

    fn ends(t: DateTime<Utc>) -> BTreeMap<Zone, DateTime<Utc>> {
        Zone::ALL.into_iter().map(|z| (z, t)).collect()
    }

    #[test]
    fn backups_know_their_size_and_segments_count_across_log_files() {
        let info = parse_info(THREE, "src").unwrap();
        assert_eq!(info.repos[0].backups[0].size, Some(23213884));
        assert_eq!(
            segments_between("000000010000000000000002", "000000010000000000000004"),
            Some(3)
        );
        assert_eq!(
            segments_between("0000000100000000000000FF", "000000010000000100000001"),
            Some(3)
        );
        assert_eq!(segments_between("x", "000000010000000100000001"), None);
    }

    #[test]
    fn three_repositories_give_three_single_zone_snapshots() {
        let info = parse_info(THREE, "src").unwrap();
        assert_eq!(info.readable_zones(), ZoneSet::ALL);
        let end = Utc.timestamp_opt(1795612300, 0).unwrap();
        let catalog = info.catalog(&ends(end));
        let ids: Vec<(&str, ZoneSet)> = catalog
            .snapshots
            .iter()
            .map(|s| (s.id.as_str(), s.zones))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("20261125-130830F", ZoneSet::of(&[Zone::Az1])),
                ("20261125-130834F", ZoneSet::of(&[Zone::Az2])),
                ("20261125-130838F", ZoneSet::of(&[Zone::Az3])),
            ]
        );
        let first = &catalog.snapshots[0];
        assert_eq!(first.started_at.timestamp(), 1795612110);
        assert_eq!(first.finished_at.timestamp(), 1795612113 + 1);
        // Each zone's log starts at its own backup and ends where told.
        assert_eq!(catalog.log.len(), 3);
        assert_eq!(catalog.log[0].from.timestamp(), 1795612110);
        assert_eq!(catalog.log[0].to, end);
        assert_eq!(
            info.newest_segments().get(&Zone::Az2).map(String::as_str),
            Some("000000010000000000000007")
        );
    }

    #[test]
    fn an_unreadable_repository_is_left_out() {
        let info = parse_info(AZ1_DOWN, "src").unwrap();
        assert_eq!(info.readable_zones(), ZoneSet::of(&[Zone::Az2, Zone::Az3]));
        assert!(
            info.repo(Zone::Az1)
                .unwrap()
                .status
                .contains("Permission denied")
        );
        let catalog = info.catalog(&ends(Utc::now()));
        assert!(
            catalog
                .snapshots
                .iter()
                .all(|s| !s.zones.contains(Zone::Az1))
        );
        assert!(!info.newest_segments().contains_key(&Zone::Az1));

        let info = parse_info(ALL_DOWN, "src").unwrap();
        assert_eq!(info.readable_zones(), ZoneSet::NONE);
        assert_eq!(info.catalog(&ends(Utc::now())), Catalog::default());
    }

    #[test]
    fn an_unreadable_zone_shows_what_it_held_when_last_seen() {
        let end = Utc.timestamp_opt(1795612300, 0).unwrap();
        let mut healthy = parse_info(THREE, "src").unwrap();
        let mut log_end = ends(end);
        let seen = healthy.merge_last_seen(&BTreeMap::new(), &mut log_end);
        assert_eq!(seen.len(), 3);

        let mut down = parse_info(AZ1_DOWN, "src").unwrap();
        let mut log_end: BTreeMap<Zone, DateTime<Utc>> =
            [(Zone::Az2, end), (Zone::Az3, end)].into_iter().collect();
        let kept = down.merge_last_seen(&seen, &mut log_end);
        assert_eq!(kept.get(&Zone::Az1), seen.get(&Zone::Az1));
        assert_eq!(log_end.get(&Zone::Az1), Some(&end));
        let catalog = down.catalog(&log_end);
        assert!(
            catalog
                .snapshots
                .iter()
                .any(|s| s.zones.contains(Zone::Az1))
        );
        // Still unreadable: not a zone to restore from.
        assert!(!down.readable_zones().contains(Zone::Az1));
    }

    #[test]
    fn no_log_end_means_no_log_span() {
        let info = parse_info(THREE, "src").unwrap();
        let catalog = info.catalog(&BTreeMap::new());
        assert_eq!(catalog.snapshots.len(), 3);
        assert!(catalog.log.is_empty());
    }

    #[test]
    fn another_stanza_or_garbage_is_an_error() {
        assert!(parse_info(THREE, "other").is_err());
        assert!(parse_info("not json", "src").is_err());
    }

    #[test]
    fn newest_transaction_end_from_waldump() {
        let end = last_transaction_end(WALDUMP).unwrap();
        assert_eq!(end.to_rfc3339(), "2026-11-25T13:11:30.308644+00:00");
        assert_eq!(last_transaction_end("rmgr: XLOG desc: SWITCH"), None);
    }

    #[test]
    fn segments_count_down_across_log_files() {
        assert_eq!(
            previous_segment("00000001000000000000000A").as_deref(),
            Some("000000010000000000000009")
        );
        assert_eq!(
            previous_segment("000000010000000200000000").as_deref(),
            Some("0000000100000001000000FF")
        );
        assert_eq!(previous_segment("000000010000000000000000"), None);
    }
}
