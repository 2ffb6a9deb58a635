//! What happened around a moment, from the zones' archived WAL: segments
//! fetched with `archive-get` and decoded with `pg_waldump` (see `wal.rs`),
//! found by their commit times; and the names of a source's relations by
//! file, read from its catalog without writing anything.

use super::reach::Reach;
use super::wal::{self, SegmentDigest};
use super::*;
use crate::domain::transactions::{LogRead, LoggedTransaction, RelationFile, RelationName};

/// Most segments one read decodes (16 MiB each): past them the read
/// stops early and says how far it got.
const MAX_SEGMENTS_PER_READ: usize = 256;

/// `000000010000000A000000FF` as one number, and back.
fn segment_number(segment: &str) -> Option<(String, u64)> {
    if segment.len() != 24 {
        return None;
    }
    let log = u64::from_str_radix(&segment[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&segment[16..], 16).ok()?;
    Some((segment[..8].to_string(), log * 0x100 + seg))
}

fn segment_name(timeline: &str, number: u64) -> String {
    format!("{timeline}{:08X}{:08X}", number / 0x100, number % 0x100)
}

impl PgBackRestBackend {
    /// The archived segments of a cluster decoded so far (and kept), in
    /// order: what its reads of the log cost, for measuring them.
    pub fn decoded_segments(&self, cluster_id: ClusterId) -> Vec<String> {
        let stanza = layout::stanza(cluster_id);
        let mut segments: Vec<String> = self
            .digests
            .lock()
            .expect("cache lock")
            .keys()
            .filter(|(s, _)| *s == stanza)
            .map(|(_, segment)| segment.clone())
            .collect();
        segments.sort();
        segments
    }

    /// One archived segment of `zone`, decoded (cached: archived segments
    /// never change).
    async fn segment_digest(
        &self,
        reach: &Reach,
        zone: Zone,
        segment: &str,
    ) -> Result<Arc<SegmentDigest>, String> {
        let key = (reach.stanza.clone(), segment.to_string());
        if let Some(known) = self.digests.lock().expect("cache lock").get(&key) {
            return Ok(known.clone());
        }
        let dump = self.dump_segment(reach, zone, segment, None).await?;
        let digest = Arc::new(wal::digest(&dump));
        let mut cache = self.digests.lock().expect("cache lock");
        if cache.len() >= SEGMENT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, digest.clone());
        Ok(digest)
    }

    /// What `key` reads from segment `number` or, when it holds nothing of
    /// the kind (a switch with no transaction), from the next few: what a
    /// search of the archive compares with.
    async fn first_key_from<T>(
        &self,
        reach: &Reach,
        zone: Zone,
        timeline: &str,
        (number, last): (u64, u64),
        key: impl Fn(&SegmentDigest) -> Option<T>,
    ) -> Result<Option<T>, String> {
        for n in number..=last.min(number + 8) {
            let digest = self
                .segment_digest(reach, zone, &segment_name(timeline, n))
                .await?;
            if let Some(found) = key(&digest) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The online zone holding the most of the cluster's log, with the
    /// timeline and the numbers of its oldest and newest segment; `None`
    /// when no online zone holds any (or the cluster is not a source).
    async fn log_zone(
        &self,
        cluster: &Cluster,
    ) -> Result<Option<(Reach, Zone, String, u64, u64)>, FleetError> {
        let Some(reach) = self.reach(cluster).await? else {
            return Ok(None);
        };
        let info = self.read_info(&reach).await?;
        let admin = self.store.online_zones(&cluster.region).await?;
        let online = admin.intersect(info.readable_zones());
        let Some((zone, oldest, newest)) = online
            .iter()
            .filter_map(|zone| {
                let (oldest, newest) = info.repo(zone)?.wal.clone()?;
                Some((zone, oldest, newest))
            })
            .min_by(|a, b| a.1.cmp(&b.1))
        else {
            return Ok(None);
        };
        match (segment_number(&oldest), segment_number(&newest)) {
            (Some((timeline, first)), Some((_, last))) => {
                Ok(Some((reach, zone, timeline, first, last)))
            }
            _ => Err(FleetError::Unreachable(format!(
                "unexpected WAL segment names {oldest} and {newest}"
            ))),
        }
    }

    /// The committed transaction `xid`, found by id: ids are handed out in
    /// order, so it ends in the first segment whose newest ended id reaches
    /// it, or soon after.
    pub(super) async fn find_transaction(
        &self,
        cluster: &Cluster,
        xid: u64,
    ) -> Result<Option<LoggedTransaction>, FleetError> {
        const AFTER: u64 = 16;
        let Some((reach, zone, timeline, first, last)) = self.log_zone(cluster).await? else {
            return Ok(None);
        };
        let unreadable =
            |e: String| FleetError::Unreachable(format!("reading the archived log: {e}"));
        let (mut low, mut high) = (first, last + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            let newest = self
                .first_key_from(&reach, zone, &timeline, (middle, last), |d| d.newest_xid())
                .await
                .map_err(unreadable)?;
            match newest {
                Some(newest) if newest < xid => low = middle + 1,
                _ => high = middle,
            }
        }
        let start = low.saturating_sub(1).max(first);
        let mut digests = Vec::new();
        for number in start..=last.min(low + AFTER) {
            let digest = self
                .segment_digest(&reach, zone, &segment_name(&timeline, number))
                .await
                .map_err(unreadable)?;
            let ends_here = digest.ends.iter().any(|e| e.xid == xid);
            digests.push(digest);
            if ends_here {
                break;
            }
        }
        Ok(wal::assemble(digests.iter().map(|d| (**d).clone()))
            .into_iter()
            .find(|t| t.xid == xid))
    }

    pub(super) async fn log_between(
        &self,
        cluster: &Cluster,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<LogRead, FleetError> {
        let nothing = LogRead {
            transactions: Vec::new(),
            through: to,
            ends: true,
            offline: false,
        };
        let Some((reach, zone, timeline, first, last)) = self.log_zone(cluster).await? else {
            return Ok(if self.reach(cluster).await?.is_some() {
                LogRead::offline(to)
            } else {
                nothing
            });
        };
        let unreadable =
            |e: String| FleetError::Unreachable(format!("reading the archived log: {e}"));
        // The first segment whose latest commit is at or after `from`.
        let (mut low, mut high) = (first, last + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            match self
                .first_key_from(&reach, zone, &timeline, (middle, last), |d| {
                    d.commit_span().map(|(_, latest)| latest)
                })
                .await
                .map_err(unreadable)?
            {
                Some(latest) if latest < from => low = middle + 1,
                _ => high = middle,
            }
        }
        // One segment earlier as well: work of a transaction that commits
        // in the first one may begin there.
        let start = low.saturating_sub(1).max(first);
        let mut digests = Vec::new();
        let mut through = to;
        let mut ends = true;
        for number in start..=last {
            if digests.len() == MAX_SEGMENTS_PER_READ {
                ends = false;
                // Up to the last commit read, which is complete.
                through = digests
                    .iter()
                    .filter_map(|d: &Arc<SegmentDigest>| d.commit_span())
                    .map(|(_, latest)| latest)
                    .max()
                    .unwrap_or(from)
                    .min(to);
                break;
            }
            let digest = self
                .segment_digest(&reach, zone, &segment_name(&timeline, number))
                .await
                .map_err(unreadable)?;
            let past = digest
                .commit_span()
                .is_some_and(|(earliest, _)| earliest > to);
            digests.push(digest);
            if past {
                ends = false;
                break;
            }
        }
        let mut transactions = wal::assemble(digests.iter().map(|d| (**d).clone()));
        transactions.retain(|t| t.committed_at >= from && t.committed_at <= through);
        // Read to the newest segment: the log ends with its last commit.
        if ends {
            let newest = digests
                .iter()
                .rev()
                .find_map(|d| d.commit_span())
                .map(|(_, latest)| latest);
            through = newest.map_or(to, |latest| latest.min(to));
            ends = newest.is_none_or(|latest| latest < to);
        }
        Ok(LogRead {
            transactions,
            through,
            ends,
            offline: false,
        })
    }

    /// Every relation with storage in every database of the source, by
    /// file, in a read-only transaction.
    pub(super) async fn source_relation_names(
        &self,
        cluster: &Cluster,
    ) -> Result<Vec<(RelationFile, RelationName)>, FleetError> {
        // A cluster of another host is read through its zones only: the
        // desk opens no session on it.
        if cluster.deleted_at.is_some() || cluster.location.is_some() || !self.is_source(cluster.id)
        {
            return Ok(Vec::new());
        }
        let home = self.layout.cluster(cluster.id);
        let server = self.source_server(&home, cluster);
        let fail =
            |e: String| FleetError::Unreachable(format!("reading the source's catalog: {e}"));
        let mut conn = server.connect().await.map_err(fail)?;
        let databases: Vec<(i64, String)> = sqlx::query_as(
            "SELECT oid::bigint, datname FROM pg_database \
             WHERE datallowconn AND NOT datistemplate ORDER BY oid",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
        let _ = conn.close().await;
        let mut names = Vec::new();
        for (oid, database) in databases {
            let options = server
                .connect_options()
                .database(&database)
                .options([("default_transaction_read_only", "on")]);
            let mut conn = tokio::time::timeout(
                StdDuration::from_secs(5),
                sqlx::PgConnection::connect_with(&options),
            )
            .await
            .map_err(|_| fail(format!("connecting to {database} timed out")))?
            .map_err(|e| fail(e.to_string()))?;
            let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(
                "SELECT pg_relation_filenode(c.oid)::bigint, n.nspname::text, c.relname::text, \
                        c.relkind IN ('r', 'p', 'm') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE pg_relation_filenode(c.oid) IS NOT NULL",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(|e| fail(e.to_string()))?;
            let _ = conn.close().await;
            let database = u32::try_from(oid).unwrap_or_default();
            names.extend(rows.into_iter().filter_map(|(file, schema, name, table)| {
                Some((
                    RelationFile {
                        database,
                        relfilenode: u32::try_from(file).ok()?,
                    },
                    RelationName {
                        schema,
                        name,
                        table,
                    },
                ))
            }));
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_count_across_log_files() {
        let (timeline, n) = segment_number("00000001000000AB000000FF").unwrap();
        assert_eq!(timeline, "00000001");
        assert_eq!(segment_name(&timeline, n + 1), "00000001000000AC00000000");
        assert_eq!(segment_name(&timeline, n), "00000001000000AB000000FF");
        assert!(segment_number("short").is_none());
    }
}
