//! The backup catalog of a cluster and what can be restored from it (SPEC §2).
//!
//! Everything here is computed from the real catalog: snapshots with the zones
//! that hold a copy, and the archived log per zone. Nothing assumes a backup
//! exists because the policy says it should.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

string_enum! {
    /// An availability zone of a region. Every region has exactly three.
    #[derive(PartialOrd, Ord)]
    pub enum Zone ("zone") {
        Az1 = "az1",
        Az2 = "az2",
        Az3 = "az3",
    }
}

impl Zone {
    /// Position in `ALL`; pgBackRest numbers its repositories `index() + 1`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> Option<Zone> {
        Zone::ALL.get(index).copied()
    }
}

/// A set of zones: where a copy is held, or which zones are online.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ZoneSet(u8);

impl ZoneSet {
    pub const NONE: ZoneSet = ZoneSet(0);
    pub const ALL: ZoneSet = ZoneSet(0b111);

    pub fn of(zones: &[Zone]) -> ZoneSet {
        zones.iter().fold(ZoneSet::NONE, |set, z| set.with(*z))
    }

    pub fn with(self, zone: Zone) -> ZoneSet {
        ZoneSet(self.0 | 1 << zone.index())
    }

    pub fn without(self, zone: Zone) -> ZoneSet {
        ZoneSet(self.0 & !(1 << zone.index()))
    }

    pub fn contains(self, zone: Zone) -> bool {
        self.0 & (1 << zone.index()) != 0
    }

    pub fn intersect(self, other: ZoneSet) -> ZoneSet {
        ZoneSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Zone> {
        Zone::ALL.into_iter().filter(move |z| self.contains(*z))
    }
}

impl fmt::Debug for ZoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ZoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Zone::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

impl Serialize for ZoneSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ZoneSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let zones = Vec::<Zone>::deserialize(d)?;
        Ok(ZoneSet::of(&zones))
    }
}

/// A completed base backup. It can seed a restore to any moment from
/// `finished_at` on, as far as the log in the same zone reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub zones: ZoneSet,
}

/// An unbroken stretch of archived log held in `zones`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub zones: ZoneSet,
}

/// What a cluster's backups hold, as read from the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub snapshots: Vec<Snapshot>,
    pub log: Vec<LogSpan>,
}

/// How long backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub retention: Duration,
    /// A deleted cluster stays restorable this long after its deletion.
    pub deleted_grace: Duration,
}

impl RetentionPolicy {
    pub fn days(retention_days: i64) -> RetentionPolicy {
        RetentionPolicy {
            retention: Duration::days(retention_days),
            deleted_grace: Duration::days(7),
        }
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy::days(35)
    }
}

/// When a cluster was created and, if so, deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterLife {
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl ClusterLife {
    /// A deleted cluster past its grace period can no longer be restored at all.
    pub fn restore_expired(&self, policy: &RetentionPolicy, now: DateTime<Utc>) -> bool {
        self.deleted_at
            .is_some_and(|deleted| now > deleted + policy.deleted_grace)
    }
}

/// The restorable window `[earliest, latest]`. It may contain gaps where the
/// log is missing; `plan_restore` is the final word on one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.earliest <= t && t <= self.latest
    }
}

impl Catalog {
    /// The log held in `zone` as disjoint, sorted intervals. Touching or
    /// overlapping spans merge: the log is continuous across them.
    pub fn log_in(&self, zone: Zone) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut spans: Vec<_> = self
            .log
            .iter()
            .filter(|s| s.zones.contains(zone) && s.from <= s.to)
            .map(|s| (s.from, s.to))
            .collect();
        spans.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(spans.len());
        for (from, to) in spans {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        merged
    }

    /// Does the log in `zone` run without a break from `from` to `to`?
    pub fn log_covers(&self, zone: Zone, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.log_in(zone)
            .iter()
            .any(|(start, end)| *start <= from && to <= *end)
    }

    /// The end of the newest archived log in any zone.
    pub fn log_end(&self) -> Option<DateTime<Utc>> {
        self.log.iter().map(|s| s.to).max()
    }

    /// Only what `zones` hold: the catalog as far as those zones can serve it.
    pub fn held_in(&self, zones: ZoneSet) -> Catalog {
        Catalog {
            snapshots: self
                .snapshots
                .iter()
                .filter(|s| !s.zones.intersect(zones).is_empty())
                .map(|s| Snapshot {
                    zones: s.zones.intersect(zones),
                    ..s.clone()
                })
                .collect(),
            log: self
                .log
                .iter()
                .filter(|l| !l.zones.intersect(zones).is_empty())
                .map(|l| LogSpan {
                    zones: l.zones.intersect(zones),
                    ..l.clone()
                })
                .collect(),
        }
    }

    /// Zones in which `snapshot` can seed a restore: a copy plus log from its end.
    fn usable_zones(&self, snapshot: &Snapshot) -> ZoneSet {
        snapshot
            .zones
            .iter()
            .filter(|z| self.log_covers(*z, snapshot.finished_at, snapshot.finished_at))
            .fold(ZoneSet::NONE, ZoneSet::with)
    }
}

/// The restorable window of a cluster, or `None` when nothing can be restored.
///
/// `earliest = max(now − retention, end of the first snapshot with log after it)`;
/// `latest` is the end of the archived log, never in the future and, for a
/// deleted cluster, never past its deletion.
pub fn restorable_window(
    catalog: &Catalog,
    life: &ClusterLife,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Option<Window> {
    if life.restore_expired(policy, now) {
        return None;
    }
    let first_base = catalog
        .snapshots
        .iter()
        .filter(|s| !catalog.usable_zones(s).is_empty())
        .map(|s| s.finished_at)
        .min()?;
    let earliest = first_base.max(now - policy.retention);
    let mut latest = catalog.log_end()?.min(now);
    if let Some(deleted) = life.deleted_at {
        latest = latest.min(deleted);
    }
    (earliest <= latest).then_some(Window { earliest, latest })
}

/// Where a restore to one moment will come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub snapshot_id: String,
    pub snapshot_finished_at: DateTime<Utc>,
    pub zone: Zone,
}

/// Why no plan exists for a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// No zone holds a snapshot at or before the target with log up to it:
    /// the target falls in a gap of the log or before every snapshot.
    NoContinuousBackup,
    /// Backups that would do exist, but only in these zones, all offline.
    OnlyInOfflineZones(ZoneSet),
}

/// The newest snapshot at or before `target` whose zone is online and holds
/// the log from the snapshot's end up to `target`. Older snapshots replay more
/// log to the same moment, so they are a valid choice, never a silent fallback
/// to another moment.
pub fn plan_restore(
    catalog: &Catalog,
    target: DateTime<Utc>,
    online: ZoneSet,
) -> Result<RestorePlan, PlanError> {
    let mut candidates: Vec<&Snapshot> = catalog
        .snapshots
        .iter()
        .filter(|s| s.finished_at <= target)
        .collect();
    candidates.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(a.id.cmp(&b.id)));

    let mut offline_holders = ZoneSet::NONE;
    for snapshot in candidates {
        for zone in snapshot.zones.iter() {
            if !catalog.log_covers(zone, snapshot.finished_at, target) {
                continue;
            }
            if online.contains(zone) {
                return Ok(RestorePlan {
                    snapshot_id: snapshot.id.clone(),
                    snapshot_finished_at: snapshot.finished_at,
                    zone,
                });
            }
            offline_holders = offline_holders.with(zone);
        }
    }
    if offline_holders.is_empty() {
        Err(PlanError::NoContinuousBackup)
    } else {
        Err(PlanError::OnlyInOfflineZones(offline_holders))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
    }

    fn snap(id: &str, day: i64, zones: ZoneSet) -> Snapshot {
        Snapshot {
            id: id.into(),
            started_at: t(day) - Duration::minutes(10),
            finished_at: t(day),
            zones,
        }
    }

    fn life() -> ClusterLife {
        ClusterLife {
            created_at: t(0),
            deleted_at: None,
        }
    }

    #[test]
    fn window_starts_at_retention_edge_when_older_snapshots_exist() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 0, ZoneSet::ALL), snap("s1", 1, ZoneSet::ALL)],
            log: vec![LogSpan {
                from: t(0),
                to: t(50),
                zones: ZoneSet::ALL,
            }],
        };
        let now = t(50);
        let w = restorable_window(&catalog, &life(), &RetentionPolicy::default(), now).unwrap();
        assert_eq!(w.earliest, now - Duration::days(35));
        assert_eq!(w.latest, t(50));
    }

    #[test]
    fn window_starts_at_first_snapshot_of_a_young_cluster() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 2, ZoneSet::ALL)],
            log: vec![LogSpan {
                from: t(2),
                to: t(5),
                zones: ZoneSet::ALL,
            }],
        };
        let w = restorable_window(&catalog, &life(), &RetentionPolicy::default(), t(6)).unwrap();
        assert_eq!(w.earliest, t(2));
        assert_eq!(w.latest, t(5));
    }

    #[test]
    fn snapshot_without_log_after_it_does_not_open_the_window() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 1, ZoneSet::ALL), snap("s1", 3, ZoneSet::ALL)],
            log: vec![LogSpan {
                from: t(3),
                to: t(4),
                zones: ZoneSet::ALL,
            }],
        };
        let w = restorable_window(&catalog, &life(), &RetentionPolicy::default(), t(5)).unwrap();
        assert_eq!(w.earliest, t(3));
    }

    #[test]
    fn latest_never_in_future_and_stops_at_deletion() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 1, ZoneSet::ALL)],
            log: vec![LogSpan {
                from: t(1),
                to: t(30),
                zones: ZoneSet::ALL,
            }],
        };
        let policy = RetentionPolicy::default();
        let w = restorable_window(&catalog, &life(), &policy, t(10)).unwrap();
        assert_eq!(w.latest, t(10));
        let deleted = ClusterLife {
            created_at: t(0),
            deleted_at: Some(t(8)),
        };
        let w = restorable_window(&catalog, &deleted, &policy, t(10)).unwrap();
        assert_eq!(w.latest, t(8));
        assert_eq!(restorable_window(&catalog, &deleted, &policy, t(16)), None);
    }

    #[test]
    fn plan_picks_newest_snapshot_in_an_online_zone() {
        let catalog = Catalog {
            snapshots: vec![
                snap("old", 1, ZoneSet::ALL),
                snap("new", 2, ZoneSet::of(&[Zone::Az1])),
            ],
            log: vec![LogSpan {
                from: t(1),
                to: t(5),
                zones: ZoneSet::ALL,
            }],
        };
        let plan = plan_restore(&catalog, t(3), ZoneSet::ALL).unwrap();
        assert_eq!((plan.snapshot_id.as_str(), plan.zone), ("new", Zone::Az1));
        let plan = plan_restore(&catalog, t(3), ZoneSet::ALL.without(Zone::Az1)).unwrap();
        assert_eq!((plan.snapshot_id.as_str(), plan.zone), ("old", Zone::Az2));
    }

    #[test]
    fn plan_refuses_a_gap_in_the_log() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 1, ZoneSet::ALL)],
            log: vec![
                LogSpan {
                    from: t(1),
                    to: t(2),
                    zones: ZoneSet::ALL,
                },
                LogSpan {
                    from: t(3),
                    to: t(5),
                    zones: ZoneSet::ALL,
                },
            ],
        };
        assert_eq!(
            plan_restore(&catalog, t(4), ZoneSet::ALL),
            Err(PlanError::NoContinuousBackup)
        );
        assert!(plan_restore(&catalog, t(2), ZoneSet::ALL).is_ok());
    }

    #[test]
    fn plan_reports_offline_holders() {
        let catalog = Catalog {
            snapshots: vec![snap("s0", 1, ZoneSet::of(&[Zone::Az1]))],
            log: vec![LogSpan {
                from: t(1),
                to: t(5),
                zones: ZoneSet::ALL,
            }],
        };
        assert_eq!(
            plan_restore(&catalog, t(2), ZoneSet::ALL.without(Zone::Az1)),
            Err(PlanError::OnlyInOfflineZones(ZoneSet::of(&[Zone::Az1])))
        );
    }

    #[test]
    fn touching_log_spans_merge() {
        let catalog = Catalog {
            snapshots: vec![],
            log: vec![
                LogSpan {
                    from: t(1),
                    to: t(2),
                    zones: ZoneSet::ALL,
                },
                LogSpan {
                    from: t(2),
                    to: t(4),
                    zones: ZoneSet::ALL,
                },
            ],
        };
        assert!(catalog.log_covers(Zone::Az2, t(1), t(4)));
    }

    #[test]
    fn zone_set_round_trips_through_json() {
        let set = ZoneSet::of(&[Zone::Az1, Zone::Az3]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["az1","az3"]"#);
        assert_eq!(serde_json::from_str::<ZoneSet>(&json).unwrap(), set);
    }
}
