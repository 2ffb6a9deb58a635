//! The simulated clusters' transaction log: one commit every
//! `COMMIT_INTERVAL_SECS`, over a few tables named after the cluster, now
//! and then a large clean-up delete, and the transactions put there on
//! purpose (the demo's dropped table), which take the place of the steady
//! commit at their moment. The same cluster and moment always give the
//! same transaction, in every process.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::domain::ids::ClusterId;
use crate::domain::transactions::{
    LARGE_DELETE_ROWS, LoggedTransaction, RelationFile, RelationName, RowCounts,
};

/// Simulated clusters commit a transaction every few seconds.
pub const COMMIT_INTERVAL_SECS: i64 = 7;

/// The simulated clusters' one database.
pub const DATABASE: u32 = 16390;

/// The tables a simulated cluster has, by its name.
fn table_names(cluster_name: &str) -> &'static [&'static str] {
    if cluster_name.contains("order") {
        &["orders", "order_items", "customers", "payments", "sessions"]
    } else if cluster_name.contains("inventor") {
        &["items", "stock_moves", "warehouses", "sessions"]
    } else if cluster_name.contains("analytic") {
        &["events", "daily_totals", "sessions"]
    } else {
        &["accounts", "events", "sessions"]
    }
}

/// Every table and its primary key index, by file: table `i` is file
/// 16400 + 10 i, its index the next one.
pub fn relations(cluster_name: &str) -> Vec<(RelationFile, RelationName)> {
    let mut all = Vec::new();
    for (i, name) in table_names(cluster_name).iter().enumerate() {
        let table = 16400 + 10 * i as u32;
        all.push((
            file(table),
            RelationName {
                schema: "public".into(),
                name: (*name).into(),
                table: true,
            },
        ));
        all.push((
            file(table + 1),
            RelationName {
                schema: "public".into(),
                name: format!("{name}_pkey"),
                table: false,
            },
        ));
    }
    all
}

/// The files of the table called `name`: itself and its index.
pub fn table_files(cluster_name: &str, name: &str) -> Vec<RelationFile> {
    let names = relations(cluster_name);
    let Some(position) = names.iter().position(|(_, n)| n.table && n.name == name) else {
        return Vec::new();
    };
    names[position..position + 2]
        .iter()
        .map(|(f, _)| *f)
        .collect()
}

fn file(relfilenode: u32) -> RelationFile {
    RelationFile {
        database: DATABASE,
        relfilenode,
    }
}

/// The transaction id of the commit at tick `tick`.
pub fn xid_at(tick: i64) -> u64 {
    1000 + tick.max(0) as u64
}

/// The tick whose commit has transaction id `xid`.
pub fn tick_of(xid: u64) -> Option<i64> {
    i64::try_from(xid.checked_sub(1000)?).ok()
}

/// splitmix64: a fixed, well-spread hash of the cluster and the tick.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The steady commit at `tick` over the tables not dropped by then.
fn steady(cluster: ClusterId, tick: i64, tables: &[RelationFile]) -> Option<LoggedTransaction> {
    let seed = cluster.uuid().as_u64_pair().0 ^ cluster.uuid().as_u64_pair().1;
    let h = mix(seed ^ tick as u64);
    let committed_at = DateTime::from_timestamp(tick * COMMIT_INTERVAL_SECS, 0)?;
    let mut rows = BTreeMap::new();
    if tables.is_empty() {
        return Some(LoggedTransaction {
            xid: xid_at(tick),
            committed_at,
            rows,
            ddl: Vec::new(),
        });
    }
    // Sessions, the last table, are cleaned up in bulk about every hour.
    let sessions = *tables.last().expect("a table");
    if (h >> 20).is_multiple_of(500) {
        rows.insert(
            sessions,
            RowCounts {
                deleted: LARGE_DELETE_ROWS + (h >> 32) % 4000,
                ..RowCounts::default()
            },
        );
    } else {
        let table = tables[(h % tables.len() as u64) as usize];
        rows.insert(
            table,
            RowCounts {
                inserted: 1 + (h >> 8) % 4,
                updated: (h >> 12) % 3,
                deleted: (h >> 16) % 4 / 3,
            },
        );
        // Every other order touches a second table.
        if (h >> 24).is_multiple_of(2) && tables.len() > 1 {
            let other = tables[((h >> 40) % tables.len() as u64) as usize];
            rows.entry(other).or_insert(RowCounts {
                inserted: 1 + (h >> 44) % 3,
                ..RowCounts::default()
            });
        }
    }
    Some(LoggedTransaction {
        xid: xid_at(tick),
        committed_at,
        rows,
        ddl: Vec::new(),
    })
}

/// The log from `from` to `to`: the steady commits, with `placed` ones
/// (any order) in place of the steady commit at their tick. A table a
/// placed transaction dropped takes no more rows after it.
pub fn log_between(
    cluster: ClusterId,
    cluster_name: &str,
    placed: &[LoggedTransaction],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<LoggedTransaction> {
    let tables: Vec<RelationFile> = relations(cluster_name)
        .into_iter()
        .filter(|(_, n)| n.table)
        .map(|(f, _)| f)
        .collect();
    let by_xid: BTreeMap<u64, &LoggedTransaction> = placed.iter().map(|t| (t.xid, t)).collect();
    let first = from.timestamp().div_euclid(COMMIT_INTERVAL_SECS)
        + i64::from(
            from.timestamp().rem_euclid(COMMIT_INTERVAL_SECS) != 0
                || from.timestamp_subsec_nanos() != 0,
        );
    let last = to.timestamp().div_euclid(COMMIT_INTERVAL_SECS);
    let mut out = Vec::new();
    for tick in first..=last {
        let at = DateTime::from_timestamp(tick * COMMIT_INTERVAL_SECS, 0);
        if let Some(t) = by_xid.get(&xid_at(tick)) {
            out.push((*t).clone());
            continue;
        }
        let gone = dropped_by(placed, at.unwrap_or(to));
        let alive: Vec<RelationFile> = tables
            .iter()
            .copied()
            .filter(|f| !gone.contains(f))
            .collect();
        out.extend(steady(cluster, tick, &alive));
    }
    out
}

/// The files placed transactions dropped at or before `at`.
pub fn dropped_by(placed: &[LoggedTransaction], at: DateTime<Utc>) -> BTreeSet<RelationFile> {
    placed
        .iter()
        .filter(|t| t.committed_at <= at)
        .flat_map(|t| t.ddl.iter())
        .filter(|d| d.kind == crate::domain::transactions::DdlKind::Drop)
        .filter_map(|d| d.relation)
        .collect()
}

/// The tick of the last commit at or before `t`.
pub fn tick_at_or_before(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(COMMIT_INTERVAL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transactions::{Ddl, DdlKind};
    use chrono::{Duration, TimeZone};

    fn cluster() -> ClusterId {
        uuid::Uuid::from_u128(42).into()
    }

    #[test]
    fn the_log_is_the_same_every_time_and_commits_every_interval() {
        let from = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let to = from + Duration::minutes(10);
        let a = log_between(cluster(), "orders-prod", &[], from, to);
        let b = log_between(cluster(), "orders-prod", &[], from, to);
        assert_eq!(a, b);
        assert_eq!(a.len() as i64, 600 / COMMIT_INTERVAL_SECS + 1);
        for pair in a.windows(2) {
            assert_eq!(
                pair[1].committed_at - pair[0].committed_at,
                Duration::seconds(COMMIT_INTERVAL_SECS)
            );
            assert_eq!(pair[1].xid, pair[0].xid + 1);
        }
        assert!(
            a.iter()
                .all(|t| t.committed_at >= from && t.committed_at <= to)
        );
        assert!(a.iter().all(|t| !t.rows.is_empty()));
    }

    #[test]
    fn a_dropped_table_takes_no_rows_after_its_drop() {
        let from = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let tick = tick_at_or_before(from + Duration::minutes(5));
        let orders = table_files("orders-prod", "orders");
        let drop = LoggedTransaction {
            xid: xid_at(tick),
            committed_at: DateTime::from_timestamp(tick * COMMIT_INTERVAL_SECS, 0).unwrap(),
            rows: BTreeMap::new(),
            ddl: orders
                .iter()
                .map(|&f| Ddl {
                    kind: DdlKind::Drop,
                    relation: Some(f),
                })
                .collect(),
        };
        let log = log_between(
            cluster(),
            "orders-prod",
            std::slice::from_ref(&drop),
            from,
            from + Duration::hours(2),
        );
        let at = log.iter().position(|t| t.xid == drop.xid).unwrap();
        assert_eq!(log[at], drop, "in place of that tick's commit");
        assert!(
            log[..at].iter().any(|t| t.rows.contains_key(&orders[0])),
            "orders took rows before"
        );
        assert!(
            log[at + 1..]
                .iter()
                .all(|t| !t.rows.contains_key(&orders[0])),
            "and none after"
        );
        assert!(
            log.iter().any(|t| t.large_delete()),
            "a clean-up in two hours"
        );
    }
}
