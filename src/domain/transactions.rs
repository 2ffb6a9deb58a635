//! What happened around a moment: the committed transactions of a
//! cluster's archived log, what each touched, and the ones that matter
//! when data went missing (DDL, large deletes). Pure: the backends read the
//! log, the desk names the relations.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A relation as the log knows it: its database and file number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RelationFile {
    pub database: u32,
    pub relfilenode: u32,
}

/// The first file number of a relation people make; lower ones are the
/// system catalogs.
pub const FIRST_USER_FILE: u32 = 16384;

impl RelationFile {
    pub fn is_user(self) -> bool {
        self.relfilenode >= FIRST_USER_FILE
    }
}

/// A relation's name, from the source's catalog or from what the desk saw
/// of it before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationName {
    pub schema: String,
    pub name: String,
    /// A table (or materialised view), not one of its indexes or its
    /// TOAST storage: what people mean by "the orders table".
    pub table: bool,
}

impl RelationName {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

string_enum! {
    /// Statements that change what a relation is, as the log shows them.
    #[derive(PartialOrd, Ord)]
    pub enum DdlKind ("DDL kind") {
        Create = "CREATE",
        Drop = "DROP",
        Truncate = "TRUNCATE",
        Alter = "ALTER",
    }
}

string_enum! {
    /// Which side of a transaction a restore stops at.
    pub enum TxPosition ("transaction position") {
        /// Everything committed before it, not it.
        Before = "before",
        /// It, and everything committed before it.
        After = "after",
    }
}

/// A restore target named by a transaction of the archived log instead of
/// a time. The ticket keeps the moment it stands for as its target time:
/// a microsecond before the commit, or the commit itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionTarget {
    pub xid: u64,
    pub position: TxPosition,
}

impl TransactionTarget {
    /// The moment the window's rules check for a commit at `committed_at`.
    pub fn moment(self, committed_at: DateTime<Utc>) -> DateTime<Utc> {
        match self.position {
            TxPosition::Before => committed_at - Duration::microseconds(1),
            TxPosition::After => committed_at,
        }
    }

    /// The commit time back from the moment a ticket keeps.
    pub fn committed_at(self, moment: DateTime<Utc>) -> DateTime<Utc> {
        match self.position {
            TxPosition::Before => moment + Duration::microseconds(1),
            TxPosition::After => moment,
        }
    }

    /// "just before transaction 1234"
    pub fn describe(self) -> String {
        match self.position {
            TxPosition::Before => format!("just before transaction {}", self.xid),
            TxPosition::After => format!("just after transaction {}", self.xid),
        }
    }
}

/// Rows one transaction changed in one relation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl RowCounts {
    pub fn add(&mut self, other: RowCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

/// A statement that changed a relation's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ddl {
    pub kind: DdlKind,
    /// The relation, when the log names it (a DROP or TRUNCATE names the
    /// file it removes; an ALTER in place names none).
    pub relation: Option<RelationFile>,
}

/// One committed transaction, as decoded from the archived log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedTransaction {
    pub xid: u64,
    /// To the microsecond, as the commit record has it.
    pub committed_at: DateTime<Utc>,
    #[serde(with = "rows_as_list")]
    pub rows: BTreeMap<RelationFile, RowCounts>,
    pub ddl: Vec<Ddl>,
}

/// JSON keys are text: the rows are kept as a list of pairs.
mod rows_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{RelationFile, RowCounts};

    pub fn serialize<S: Serializer>(
        rows: &BTreeMap<RelationFile, RowCounts>,
        out: S,
    ) -> Result<S::Ok, S::Error> {
        rows.iter().collect::<Vec<_>>().serialize(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        input: D,
    ) -> Result<BTreeMap<RelationFile, RowCounts>, D::Error> {
        Ok(Vec::<(RelationFile, RowCounts)>::deserialize(input)?
            .into_iter()
            .collect())
    }
}

/// At least this many rows deleted by one transaction from one relation
/// is marked as a large delete.
pub const LARGE_DELETE_ROWS: u64 = 1000;

impl LoggedTransaction {
    /// What to look at first: a DROP or TRUNCATE, or many rows deleted.
    pub fn is_destructive(&self) -> bool {
        self.large_delete()
            || self
                .ddl
                .iter()
                .any(|d| matches!(d.kind, DdlKind::Drop | DdlKind::Truncate))
    }

    pub fn large_delete(&self) -> bool {
        self.rows.values().any(|r| r.deleted >= LARGE_DELETE_ROWS)
    }

    /// Every relation it touched or changed, once each.
    pub fn relations(&self) -> Vec<RelationFile> {
        let mut all: Vec<RelationFile> = self.rows.keys().copied().collect();
        all.extend(self.ddl.iter().filter_map(|d| d.relation));
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// What a fleet read of a cluster's log: the transactions, and the moment
/// it read up to — the end asked for, or earlier when there was more log
/// than one read takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    pub transactions: Vec<LoggedTransaction>,
    pub through: DateTime<Utc>,
    /// The archived log ends at `through`: nothing later is there yet.
    pub ends: bool,
    /// No online zone holds the log: nothing could be read.
    pub offline: bool,
}

impl LogRead {
    /// Nothing read, because no zone that holds the log is online.
    pub fn offline(to: DateTime<Utc>) -> LogRead {
        LogRead {
            transactions: Vec::new(),
            through: to,
            ends: true,
            offline: true,
        }
    }
}

/// How far either side of a moment the log is read for one page.
pub const SPAN: Duration = Duration::minutes(30);
/// Most transactions on one side of a page.
pub const MAX_PER_SIDE: usize = 200;

/// The page of transactions around `around`: up to `before` that committed
/// before it, and up to `after` at or after it, in commit order. `earlier`
/// and `later` are where the neighbouring pages start (`around` for the
/// next request), within `[from, to]`: the stretch of log that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Around {
    pub transactions: Vec<LoggedTransaction>,
    pub earlier: DateTime<Utc>,
    pub later: DateTime<Utc>,
}

/// Picks the page around `around` out of the transactions read between
/// `from` and `to` (any order).
pub fn around(
    mut read: Vec<LoggedTransaction>,
    around: DateTime<Utc>,
    before: usize,
    after: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Around {
    read.retain(|t| t.committed_at >= from && t.committed_at <= to);
    read.sort_by(|a, b| a.committed_at.cmp(&b.committed_at).then(a.xid.cmp(&b.xid)));
    let split = read.partition_point(|t| t.committed_at < around);
    let start = split.saturating_sub(before);
    let end = (split + after).min(read.len());
    // A page that holds everything on a side continues past the stretch
    // read; one that shows nothing on a side continues from the moment.
    let earlier = if start == 0 {
        from
    } else if start < split {
        read[start].committed_at
    } else {
        around
    };
    let later = if end == read.len() {
        to + Duration::microseconds(1)
    } else if end > split {
        read[end - 1].committed_at + Duration::microseconds(1)
    } else {
        around
    };
    Around {
        transactions: read.drain(start..end).collect(),
        earlier,
        later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + Duration::seconds(secs)
    }

    fn tx(xid: u64, secs: i64) -> LoggedTransaction {
        LoggedTransaction {
            xid,
            committed_at: at(secs),
            rows: BTreeMap::new(),
            ddl: Vec::new(),
        }
    }

    fn xids(page: &Around) -> Vec<u64> {
        page.transactions.iter().map(|t| t.xid).collect()
    }

    #[test]
    fn a_page_holds_the_nearest_on_each_side_in_commit_order() {
        let read: Vec<_> = (0..10).rev().map(|i| tx(100 + i, i as i64 * 10)).collect();
        let page = around(read.clone(), at(45), 2, 3, at(-100), at(200));
        assert_eq!(xids(&page), vec![103, 104, 105, 106, 107]);
        assert_eq!(page.earlier, at(30), "the next page back ends there");
        assert_eq!(page.later, at(70) + Duration::microseconds(1));
        // A commit exactly at the moment is on the "after" side.
        let page = around(read.clone(), at(50), 1, 1, at(-100), at(200));
        assert_eq!(xids(&page), vec![104, 105]);
        // Asking for more than there is: the page reaches the stretch read.
        let page = around(read, at(45), 50, 50, at(-100), at(200));
        assert_eq!(page.transactions.len(), 10);
        assert_eq!(page.earlier, at(-100));
        assert_eq!(page.later, at(200) + Duration::microseconds(1));
    }

    /// Found by fuzzing the API: nothing asked for on a side, or nothing
    /// read at all, is a page like any other.
    #[test]
    fn no_transactions_on_a_side_or_none_at_all() {
        let read: Vec<_> = (0..4).map(|i| tx(i, i as i64 * 10)).collect();
        for (before, after) in [(0, 0), (0, 2), (2, 0)] {
            for moment in [-50, 0, 15, 30, 99] {
                let page = around(read.clone(), at(moment), before, after, at(-100), at(100));
                assert!(page.transactions.len() <= before + after);
                assert!(page.earlier <= at(moment).max(at(-100)));
                assert!(page.later >= at(moment).min(at(100)));
            }
        }
        let page = around(read.clone(), at(15), 0, 0, at(-100), at(100));
        assert!(page.transactions.is_empty());
        assert_eq!((page.earlier, page.later), (at(15), at(15)));
        let empty = around(Vec::new(), at(0), 0, 0, at(-100), at(100));
        assert!(empty.transactions.is_empty());
    }

    #[test]
    fn only_the_stretch_read_counts() {
        let read = vec![tx(1, -500), tx(2, 0), tx(3, 500)];
        let page = around(read, at(0), 5, 5, at(-100), at(100));
        assert_eq!(xids(&page), vec![2]);
    }

    #[test]
    fn drops_truncates_and_large_deletes_are_destructive() {
        let file = RelationFile {
            database: 5,
            relfilenode: 16384,
        };
        let mut t = tx(1, 0);
        t.rows.insert(
            file,
            RowCounts {
                deleted: LARGE_DELETE_ROWS - 1,
                ..RowCounts::default()
            },
        );
        assert!(!t.is_destructive());
        t.rows.get_mut(&file).unwrap().deleted += 1;
        assert!(t.large_delete() && t.is_destructive());
        let mut d = tx(2, 0);
        d.ddl.push(Ddl {
            kind: DdlKind::Alter,
            relation: None,
        });
        assert!(!d.is_destructive());
        d.ddl.push(Ddl {
            kind: DdlKind::Drop,
            relation: Some(file),
        });
        assert!(d.is_destructive());
        assert_eq!(d.relations(), vec![file]);
    }
}
