//! What the archived log says happened: `pg_waldump` output (run with
//! `TZ=UTC`) read one segment at a time into a digest, and digests of
//! consecutive segments assembled into committed transactions.
//!
//! A segment's digest keeps the work of every transaction id seen in it
//! and how those that ended there ended; a transaction whose commit lies
//! in a later segment picks its work up when the digests are assembled.
//! What the log cannot name directly is inferred from what it holds:
//! - DROP: files removed at commit (`rels:`) and no file made;
//! - TRUNCATE: files removed and new, empty ones made in their place;
//! - ALTER: files removed and new ones filled (a rewrite), or only the
//!   column, constraint or relation catalogs written;
//! - CREATE: new files and none removed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::domain::transactions::{Ddl, DdlKind, LoggedTransaction, RelationFile, RowCounts};

/// Catalogs whose writes mean a definition changed: pg_attribute,
/// pg_constraint and pg_class, by their file numbers at initdb.
const DEFINITION_CATALOGS: [u32; 3] = [1249, 2606, 1259];

/// What one transaction id did within one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XidWork {
    pub rows: BTreeMap<RelationFile, RowCounts>,
    /// Files made (`Storage CREATE`).
    pub created: BTreeSet<RelationFile>,
    /// Files made here that received rows or pages.
    pub filled: BTreeSet<RelationFile>,
    pub definitions_written: bool,
}

impl XidWork {
    fn merge(&mut self, other: XidWork) {
        for (file, counts) in other.rows {
            self.rows.entry(file).or_default().add(counts);
        }
        self.created.extend(other.created);
        self.filled.extend(other.filled);
        self.definitions_written |= other.definitions_written;
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidEnd {
    pub xid: u64,
    /// `None` for an abort.
    pub committed_at: Option<DateTime<Utc>>,
    pub subxacts: Vec<u64>,
    /// Files removed at commit.
    pub removed: Vec<RelationFile>,
}

/// One segment, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentDigest {
    pub work: BTreeMap<u64, XidWork>,
    pub ends: Vec<XidEnd>,
}

impl SegmentDigest {
    /// The highest transaction id that ended (committed or rolled back) in
    /// the segment.
    pub fn newest_xid(&self) -> Option<u64> {
        self.ends.iter().map(|e| e.xid).max()
    }

    /// The first and last commit in the segment.
    pub fn commit_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let mut times = self.ends.iter().filter_map(|e| e.committed_at);
        let first = times.next()?;
        let (min, max) = times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
        Some((min, max))
    }
}

/// `rel 1663/5/16384` or `base/5/16384`: the database and file number are
/// the last two numbers.
fn file_of(path: &str) -> Option<RelationFile> {
    let mut numbers = path.rsplit('/');
    let relfilenode = numbers.next()?.trim().parse().ok()?;
    let database = numbers.next()?.trim().parse().ok()?;
    Some(RelationFile {
        database,
        relfilenode,
    })
}

/// The relation of block reference `#0`.
fn first_block(line: &str) -> Option<RelationFile> {
    let at = line.find("blkref #0: rel ")? + "blkref #0: rel ".len();
    let path = line[at..].split_whitespace().next()?;
    file_of(path.trim_end_matches(','))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(name)? + name.len();
    Some(line[at..].trim_start().split(',').next()?.trim())
}

fn commit_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().trim_end_matches("UTC").trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Reads `pg_waldump` output of one segment.
pub fn digest(waldump: &str) -> SegmentDigest {
    let mut digest = SegmentDigest::default();
    for line in waldump.lines() {
        let Some(rmgr) = field(line, "rmgr:").and_then(|r| r.split_whitespace().next()) else {
            continue;
        };
        let Some(xid) = field(line, "tx:").and_then(|x| x.parse::<u64>().ok()) else {
            continue;
        };
        let Some(at) = line.find("desc: ") else {
            continue;
        };
        let desc = &line[at + "desc: ".len()..];
        let op = desc.split_whitespace().next().unwrap_or("");
        if rmgr == "Transaction" {
            if let Some(end) = transaction_end(xid, op, desc) {
                digest.ends.push(end);
            }
            continue;
        }
        if xid == 0 {
            continue;
        }
        let work = digest.work.entry(xid).or_default();
        match rmgr {
            "Storage" if op == "CREATE" => {
                if let Some(file) = desc.split_whitespace().nth(1).and_then(file_of) {
                    work.created.insert(file);
                }
            }
            "Heap" | "Heap2" => {
                let Some(file) = first_block(desc) else {
                    continue;
                };
                let counts = match op {
                    "INSERT" | "INSERT+INIT" => RowCounts {
                        inserted: 1,
                        ..RowCounts::default()
                    },
                    "MULTI_INSERT" | "MULTI_INSERT+INIT" => RowCounts {
                        inserted: desc
                            .split_whitespace()
                            .nth(1)
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0),
                        ..RowCounts::default()
                    },
                    "UPDATE" | "HOT_UPDATE" | "UPDATE+INIT" | "HOT_UPDATE+INIT" => RowCounts {
                        updated: 1,
                        ..RowCounts::default()
                    },
                    "DELETE" => RowCounts {
                        deleted: 1,
                        ..RowCounts::default()
                    },
                    _ => continue,
                };
                if DEFINITION_CATALOGS.contains(&file.relfilenode) {
                    work.definitions_written = true;
                }
                work.filled.insert(file);
                if file.is_user() {
                    work.rows.entry(file).or_default().add(counts);
                }
            }
            _ => {
                if let Some(file) = first_block(desc) {
                    work.filled.insert(file);
                }
            }
        }
    }
    // Only files made here count as filled.
    for work in digest.work.values_mut() {
        let created = work.created.clone();
        work.filled.retain(|f| created.contains(f));
    }
    digest
}

/// `COMMIT 2026-11-25 12:00:00.123456 UTC; rels: base/5/16384; subxacts: 7`
fn transaction_end(xid: u64, op: &str, desc: &str) -> Option<XidEnd> {
    let committed = match op {
        "COMMIT" | "COMMIT_PREPARED" => true,
        "ABORT" | "ABORT_PREPARED" => false,
        _ => return None,
    };
    let mut parts = desc.split("; ");
    let head = parts.next()?;
    let time = head.split_once(' ').map(|(_, t)| t).unwrap_or("");
    let mut end = XidEnd {
        xid,
        committed_at: if committed { commit_time(time) } else { None },
        subxacts: Vec::new(),
        removed: Vec::new(),
    };
    if committed && end.committed_at.is_none() {
        return None;
    }
    for part in parts {
        if let Some(rels) = part.strip_prefix("rels: ") {
            end.removed = rels.split_whitespace().filter_map(file_of).collect();
        } else if let Some(subs) = part.strip_prefix("subxacts: ") {
            end.subxacts = subs
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
        }
    }
    Some(end)
}

/// The committed transactions of consecutive segments, in commit order.
/// Work of a transaction whose end is not among them is left out.
pub fn assemble(digests: impl IntoIterator<Item = SegmentDigest>) -> Vec<LoggedTransaction> {
    let mut pending: BTreeMap<u64, XidWork> = BTreeMap::new();
    let mut done = Vec::new();
    for digest in digests {
        for (xid, work) in digest.work {
            pending.entry(xid).or_default().merge(work);
        }
        for end in digest.ends {
            let mut work = pending.remove(&end.xid).unwrap_or_default();
            for sub in &end.subxacts {
                if let Some(more) = pending.remove(sub) {
                    work.merge(more);
                }
            }
            if let Some(at) = end.committed_at {
                done.push(transaction(end.xid, at, work, &end.removed));
            }
        }
    }
    done.sort_by(|a, b| a.committed_at.cmp(&b.committed_at).then(a.xid.cmp(&b.xid)));
    done
}

fn transaction(
    xid: u64,
    committed_at: DateTime<Utc>,
    mut work: XidWork,
    removed: &[RelationFile],
) -> LoggedTransaction {
    let removed: Vec<RelationFile> = removed.iter().copied().filter(|f| f.is_user()).collect();
    let created: Vec<RelationFile> = work
        .created
        .iter()
        .copied()
        .filter(|f| f.is_user())
        .collect();
    let mut ddl = Vec::new();
    let each = |kind: DdlKind, files: &[RelationFile]| -> Vec<Ddl> {
        files
            .iter()
            .map(|&f| Ddl {
                kind,
                relation: Some(f),
            })
            .collect()
    };
    match (removed.is_empty(), created.is_empty()) {
        (false, true) => ddl = each(DdlKind::Drop, &removed),
        (false, false) if work.filled.is_empty() => ddl = each(DdlKind::Truncate, &removed),
        (false, false) => {
            // A rewrite copies the rows into the new files: not a change
            // of data, so those copies are not counted.
            work.rows.retain(|file, _| !work.created.contains(file));
            ddl.push(Ddl {
                kind: DdlKind::Alter,
                relation: None,
            });
        }
        (true, false) => ddl = each(DdlKind::Create, &created),
        (true, true) if work.definitions_written => ddl.push(Ddl {
            kind: DdlKind::Alter,
            relation: None,
        }),
        (true, true) => {}
    }
    LoggedTransaction {
        xid,
        committed_at,
        rows: work.rows,
        ddl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `pg_waldump` output of PostgreSQL 15, one segment: CREATE TABLE
    /// orders; inserts; 1200 rows into items (the fixture keeps 20); an
    /// update; a transaction with a savepoint; 1200 rows deleted from items
    /// (the fixture keeps 1000); ALTER ADD COLUMN; TRUNCATE items; ALTER
    /// COLUMN TYPE (a rewrite); a rolled-back delete; DROP TABLE orders.
    const CHANGES: &str = include_str!("testdata/waldump-changes.txt");

    fn file(relfilenode: u32) -> RelationFile {
        RelationFile {
            database: 5,
            relfilenode,
        }
    }

    fn rows(t: &LoggedTransaction, relfilenode: u32) -> (u64, u64, u64) {
        let r = t.rows.get(&file(relfilenode)).copied().unwrap_or_default();
        (r.inserted, r.updated, r.deleted)
    }

    fn kinds(t: &LoggedTransaction) -> Vec<(DdlKind, Option<u32>)> {
        t.ddl
            .iter()
            .map(|d| (d.kind, d.relation.map(|r| r.relfilenode)))
            .collect()
    }

    #[test]
    fn every_statement_reads_as_what_it_did() {
        let all = assemble([digest(CHANGES)]);
        let xids: Vec<u64> = all.iter().map(|t| t.xid).collect();
        assert_eq!(
            xids,
            vec![742, 743, 744, 745, 746, 748, 749, 750, 751, 753],
            "the rolled-back one (752) is not there"
        );
        let by = |xid: u64| all.iter().find(|t| t.xid == xid).unwrap();
        let orders = 16400;
        let items = 16394;
        assert_eq!(
            kinds(by(742)),
            vec![
                (DdlKind::Create, Some(16400)),
                (DdlKind::Create, Some(16403)),
                (DdlKind::Create, Some(16404)),
                (DdlKind::Create, Some(16405)),
            ]
        );
        assert!(by(742).rows.is_empty(), "catalog rows are not counted");
        assert_eq!(rows(by(743), orders), (5, 0, 0));
        assert_eq!(rows(by(744), items), (20, 0, 0));
        assert_eq!(rows(by(745), orders), (0, 2, 0));
        assert_eq!(
            rows(by(746), orders),
            (2, 0, 1),
            "with its savepoint's work"
        );
        assert_eq!(rows(by(748), items), (0, 0, 1000));
        assert!(by(748).large_delete());
        assert_eq!(kinds(by(749)), vec![(DdlKind::Alter, None)]);
        assert_eq!(kinds(by(750)), vec![(DdlKind::Truncate, Some(items))]);
        assert!(by(750).is_destructive());
        assert_eq!(kinds(by(751)), vec![(DdlKind::Alter, None)]);
        assert!(
            by(751).rows.is_empty(),
            "a rewrite's copied rows are not changes"
        );
        let drop = by(753);
        assert_eq!(drop.ddl.len(), 4);
        assert!(
            drop.ddl
                .iter()
                .all(|d| d.kind == DdlKind::Drop && d.relation.is_some())
        );
        assert!(drop.ddl.iter().any(|d| d.relation == Some(file(16408))));
        assert_eq!(
            drop.committed_at.to_rfc3339(),
            "2026-12-03T13:40:34.855138+00:00"
        );
        for pair in all.windows(2) {
            assert!(pair[0].committed_at <= pair[1].committed_at);
        }
    }

    #[test]
    fn work_before_a_segment_boundary_joins_its_commit() {
        let lines: Vec<&str> = CHANGES.lines().collect();
        // Split inside transaction 743's inserts.
        let cut = lines
            .iter()
            .position(|l| l.contains("tx:        743,") && l.contains("INSERT off 3"))
            .unwrap();
        let first = digest(&lines[..cut].join("\n"));
        let second = digest(&lines[cut..].join("\n"));
        let whole = assemble([first.clone(), second.clone()]);
        assert_eq!(whole, assemble([digest(CHANGES)]));
        // Alone, the second segment does not know 743's first inserts.
        let alone = assemble([second]);
        let t = alone.iter().find(|t| t.xid == 743).unwrap();
        assert_eq!(rows(t, 16400), (3, 0, 0));
        assert!(first.commit_span().is_some());
    }

    #[test]
    fn lines_that_are_not_records_are_ignored() {
        let text = "pg_waldump: error: error in WAL record\n\nrmgr: Transaction garbage";
        assert_eq!(digest(text), SegmentDigest::default());
        assert_eq!(
            file_of("pg_tblspc/16500/PG_15_202209061/5/16384"),
            Some(file(16384))
        );
    }
}
