//! What happened around a moment on a cluster: the transactions its
//! archived log holds, with the relations they touched named. Names come
//! from the source's catalog as it is now and, for relations it no longer
//! has (a dropped table), from what the desk saw of them before; what was
//! never seen is shown by its file number.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{DeskError, scope_for};
use crate::app::App;
use crate::domain::cluster::Cluster;
use crate::domain::ids::ClusterId;
use crate::domain::transactions::{
    self, DdlKind, LoggedTransaction, MAX_PER_SIDE, RelationFile, RelationName, RowCounts, SPAN,
};
use crate::store::User;

/// A relation as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// `public.orders`, or `relation 16384` when the desk never saw it.
    pub name: String,
    pub known: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTransaction {
    pub xid: u64,
    pub committed_at: DateTime<Utc>,
    pub rows: Vec<(Named, RowCounts)>,
    pub ddl: Vec<(DdlKind, Vec<Named>)>,
    pub large_delete: bool,
    pub destructive: bool,
}

/// One page of what happened around a moment.
#[derive(Debug, Clone)]
pub struct TransactionsAround {
    pub cluster: Cluster,
    pub around: DateTime<Utc>,
    /// The stretch of log read.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub transactions: Vec<NamedTransaction>,
    /// Where the pages before and after start, while there is log there.
    pub earlier: Option<DateTime<Utc>>,
    pub later: Option<DateTime<Utc>>,
    /// No zone that holds the log is online: nothing could be read.
    pub zones_offline: bool,
}

/// How many transactions either side a page holds unless asked.
pub const DEFAULT_PER_SIDE: usize = 20;

/// The names the source has now, over what the desk knew before. A
/// source that cannot be read leaves the names known before. Reading a
/// page writes nothing: the scheduler keeps the names (`remember_names`).
pub async fn relation_names(
    app: &App,
    cluster: &Cluster,
) -> Result<HashMap<RelationFile, RelationName>, DeskError> {
    let mut names: HashMap<RelationFile, RelationName> = app
        .store
        .remembered_relations(cluster.id)
        .await?
        .into_iter()
        .collect();
    match app.backend.relation_names(cluster).await {
        Ok(now) => names.extend(now),
        Err(error) => {
            tracing::warn!(cluster = %cluster.name, %error, "reading relation names");
        }
    }
    Ok(names)
}

/// Keeps what the cluster's catalog names by file now, so that the log of
/// a table dropped later still reads by its name. The scheduler does this
/// for every live cluster each round.
pub async fn remember_names(app: &App, cluster: &Cluster) -> Result<(), DeskError> {
    let names = app.backend.relation_names(cluster).await?;
    app.store
        .remember_relations(cluster.id, &names, app.now())
        .await?;
    Ok(())
}

fn named(file: RelationFile, names: &HashMap<RelationFile, RelationName>) -> Named {
    match names.get(&file) {
        Some(name) => Named {
            name: name.qualified(),
            known: true,
        },
        None => Named {
            name: format!("relation {}", file.relfilenode),
            known: false,
        },
    }
}

/// A table's index or TOAST storage stands behind the table itself.
fn is_part(file: RelationFile, names: &HashMap<RelationFile, RelationName>) -> bool {
    names.get(&file).is_some_and(|n| !n.table)
}

pub fn name_transaction(
    t: &LoggedTransaction,
    names: &HashMap<RelationFile, RelationName>,
) -> NamedTransaction {
    let rows = t
        .rows
        .iter()
        .filter(|(file, _)| !is_part(**file, names))
        .map(|(file, counts)| (named(*file, names), *counts))
        .collect();
    let mut kinds: Vec<DdlKind> = t.ddl.iter().map(|d| d.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let ddl = kinds
        .into_iter()
        .map(|kind| {
            let files: Vec<RelationFile> = t
                .ddl
                .iter()
                .filter(|d| d.kind == kind)
                .filter_map(|d| d.relation)
                .collect();
            // The tables when any are among them (a DROP TABLE also drops
            // its indexes); otherwise what there is (a CREATE INDEX).
            let tables: Vec<RelationFile> = files
                .iter()
                .copied()
                .filter(|f| !is_part(*f, names))
                .collect();
            let shown = if tables.is_empty() { files } else { tables };
            let mut relations: Vec<Named> = shown.into_iter().map(|f| named(f, names)).collect();
            relations.dedup();
            (kind, relations)
        })
        .collect();
    NamedTransaction {
        xid: t.xid,
        committed_at: t.committed_at,
        rows,
        ddl,
        large_delete: t.large_delete(),
        destructive: t.is_destructive(),
    }
}

/// The page around `around`: `before` and `after` transactions at most
/// (`MAX_PER_SIDE`), of a cluster the user may see.
pub async fn around(
    app: &App,
    user: &User,
    cluster_id: ClusterId,
    around: DateTime<Utc>,
    before: usize,
    after: usize,
) -> Result<TransactionsAround, DeskError> {
    for (field, n) in [("before", before), ("after", after)] {
        if n > MAX_PER_SIDE {
            return Err(DeskError::BadInput {
                field,
                message: format!(
                    "At most {MAX_PER_SIDE} transactions on a side; {n} were asked for"
                ),
            });
        }
    }
    let cluster = app
        .store
        .cluster(cluster_id, scope_for(user))
        .await?
        .ok_or(DeskError::NotFound)?;
    let around = crate::domain::micros(around);
    let (from, to) = (around - SPAN, around + SPAN);
    let read = app.backend.transactions(&cluster, from, to).await?;
    let names = relation_names(app, &cluster).await?;
    let page = transactions::around(read.transactions, around, before, after, from, read.through);
    // The log ends where the fleet stopped reading short of what was asked
    // (the archive's end), and nothing is later than now.
    let at_log_end = read.ends && page.later > read.through;
    let later = (!at_log_end && page.later <= app.now()).then_some(page.later);
    Ok(TransactionsAround {
        zones_offline: read.offline,
        earlier: (page.earlier > cluster.created_at).then_some(page.earlier),
        later,
        transactions: page
            .transactions
            .iter()
            .map(|t| name_transaction(t, &names))
            .collect(),
        cluster,
        around,
        from,
        to: read.through,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transactions::Ddl;
    use std::collections::BTreeMap;

    fn file(n: u32) -> RelationFile {
        RelationFile {
            database: 5,
            relfilenode: n,
        }
    }

    fn name(n: &str, table: bool) -> RelationName {
        RelationName {
            schema: "public".into(),
            name: n.into(),
            table,
        }
    }

    #[test]
    fn a_dropped_table_reads_by_its_name_and_its_parts_stay_behind_it() {
        let names = HashMap::from([
            (file(16400), name("orders", true)),
            (file(16405), name("orders_pkey", false)),
        ]);
        let t = LoggedTransaction {
            xid: 753,
            committed_at: Utc::now(),
            rows: BTreeMap::from([(file(16400), RowCounts::default())]),
            ddl: [16400, 16405, 16403]
                .into_iter()
                .map(|n| Ddl {
                    kind: DdlKind::Drop,
                    relation: Some(file(n)),
                })
                .chain([Ddl {
                    kind: DdlKind::Create,
                    relation: Some(file(16405)),
                }])
                .collect(),
        };
        let shown = name_transaction(&t, &names);
        assert_eq!(
            shown.ddl,
            vec![
                (
                    DdlKind::Create,
                    vec![Named {
                        name: "public.orders_pkey".into(),
                        known: true
                    }]
                ),
                (
                    DdlKind::Drop,
                    vec![
                        Named {
                            name: "public.orders".into(),
                            known: true
                        },
                        Named {
                            name: "relation 16403".into(),
                            known: false
                        },
                    ]
                ),
            ]
        );
        assert!(shown.destructive);
    }
}
