//! Verifying a restored cluster before it is handed over (SPEC §5): it is
//! up, out of recovery, its last applied transaction is at or before the
//! target, and its configuration equals the source's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cluster::ClusterConfig;
use super::transactions::{TransactionTarget, TxPosition};

/// What the fleet reports about the new cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedCluster {
    pub accepting_connections: bool,
    pub in_recovery: bool,
    /// Commit time of the last transaction replayed from the log, if any.
    pub last_replayed_commit: Option<DateTime<Utc>>,
    pub config: ClusterConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigComparison {
    pub setting: String,
    pub source: String,
    pub restored: String,
}

impl ConfigComparison {
    pub fn matches(&self) -> bool {
        self.source == self.restored
    }
}

/// Kept on the ticket: what was checked, and the point in time reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    pub checked_at: DateTime<Utc>,
    pub target: DateTime<Utc>,
    /// The last replayed commit; `None` if none was replayed after the snapshot.
    pub point_reached: Option<DateTime<Utc>>,
    pub checks: Vec<Check>,
    pub config: Vec<ConfigComparison>,
}

impl VerificationReport {
    /// A restore is never reported complete while any check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

fn compare(source: &ClusterConfig, restored: &ClusterConfig) -> Vec<ConfigComparison> {
    let row = |setting: &str, source: String, restored: String| ConfigComparison {
        setting: setting.to_string(),
        source,
        restored,
    };
    vec![
        row("tier", source.tier.clone(), restored.tier.clone()),
        row(
            "vcores",
            source.vcores.to_string(),
            restored.vcores.to_string(),
        ),
        row(
            "storage_gib",
            source.storage_gib.to_string(),
            restored.storage_gib.to_string(),
        ),
        row(
            "node_count",
            source.node_count.to_string(),
            restored.node_count.to_string(),
        ),
        row(
            "high_availability",
            source.high_availability.to_string(),
            restored.high_availability.to_string(),
        ),
        row(
            "server_version",
            source.server_version.clone(),
            restored.server_version.clone(),
        ),
    ]
}

/// A transaction target is met exactly: recovery stopped with that
/// transaction's commit as the last one (just after), or with none at or
/// after it (just before).
fn stopped_at(
    transaction: TransactionTarget,
    moment: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
) -> Check {
    let commit = transaction.committed_at(moment);
    let (passed, detail) = match (transaction.position, last) {
        (TxPosition::After, Some(last)) if last == commit => (
            true,
            format!(
                "stopped right after transaction {}, committed {commit}",
                transaction.xid
            ),
        ),
        (TxPosition::After, other) => (
            false,
            format!(
                "the last replayed commit {} is not transaction {}'s, committed {commit}",
                other.map_or("(none)".to_string(), |t| t.to_string()),
                transaction.xid
            ),
        ),
        (TxPosition::Before, Some(last)) if last >= commit => (
            false,
            format!(
                "the last replayed commit {last} is not before transaction {}, committed {commit}",
                transaction.xid
            ),
        ),
        (TxPosition::Before, last) => (
            true,
            format!(
                "stopped just before transaction {}, committed {commit}{}",
                transaction.xid,
                last.map_or(String::new(), |l| format!(
                    "; the last replayed commit is {l}"
                ))
            ),
        ),
    };
    Check {
        name: "point in time".into(),
        passed,
        detail,
    }
}

/// `paused`: the copy is to stay paused and read-only at the target for the
/// customer to inspect; otherwise it must have been promoted.
pub fn verify(
    target: DateTime<Utc>,
    transaction: Option<TransactionTarget>,
    source: &ClusterConfig,
    observed: &ObservedCluster,
    paused: bool,
    now: DateTime<Utc>,
) -> VerificationReport {
    let config = compare(source, &observed.config);
    let differing: Vec<&str> = config
        .iter()
        .filter(|c| !c.matches())
        .map(|c| c.setting.as_str())
        .collect();
    let point = match transaction {
        Some(transaction) => stopped_at(transaction, target, observed.last_replayed_commit),
        None => match observed.last_replayed_commit {
            Some(commit) if commit <= target => Check {
                name: "point in time".into(),
                passed: true,
                detail: format!(
                    "last replayed commit {commit} is at or before the target {target}"
                ),
            },
            Some(commit) => Check {
                name: "point in time".into(),
                passed: false,
                detail: format!("last replayed commit {commit} is after the target {target}"),
            },
            None => Check {
                name: "point in time".into(),
                passed: true,
                detail: "no transaction committed between the snapshot and the target".into(),
            },
        },
    };
    let checks = vec![
        Check {
            name: "accepts connections".into(),
            passed: observed.accepting_connections,
            detail: if observed.accepting_connections {
                "the new cluster answers queries".into()
            } else {
                "the new cluster does not answer".into()
            },
        },
        if paused {
            Check {
                name: "paused at the target".into(),
                passed: observed.in_recovery,
                detail: if observed.in_recovery {
                    "paused and read-only at the target, for the customer to inspect".into()
                } else {
                    "the copy was promoted: it no longer stands still at the target".into()
                },
            }
        } else {
            Check {
                name: "out of recovery".into(),
                passed: !observed.in_recovery,
                detail: if observed.in_recovery {
                    "the new cluster is still replaying the log".into()
                } else {
                    "the new cluster was promoted and accepts writes".into()
                },
            }
        },
        point,
        Check {
            name: "configuration".into(),
            passed: differing.is_empty(),
            detail: if differing.is_empty() {
                "same configuration as the source".into()
            } else {
                format!("differs from the source in {}", differing.join(", "))
            },
        },
    ];
    VerificationReport {
        checked_at: now,
        target,
        point_reached: observed.last_replayed_commit,
        checks,
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn config() -> ClusterConfig {
        ClusterConfig {
            tier: "GeneralPurpose".into(),
            vcores: 4,
            storage_gib: 128,
            node_count: 1,
            high_availability: true,
            server_version: "15".into(),
        }
    }

    #[test]
    fn a_replayed_commit_after_the_target_fails_verification() {
        let target = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut observed = ObservedCluster {
            accepting_connections: true,
            in_recovery: false,
            last_replayed_commit: Some(target - Duration::seconds(1)),
            config: config(),
        };
        assert!(verify(target, None, &config(), &observed, false, target).passed());
        observed.last_replayed_commit = Some(target + Duration::seconds(1));
        assert!(!verify(target, None, &config(), &observed, false, target).passed());
    }

    #[test]
    fn configuration_drift_and_recovery_fail_verification() {
        let target = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut observed = ObservedCluster {
            accepting_connections: true,
            in_recovery: true,
            last_replayed_commit: None,
            config: config(),
        };
        let report = verify(target, None, &config(), &observed, false, target);
        assert_eq!(report.failures().len(), 1);
        observed.in_recovery = false;
        observed.config.vcores = 2;
        let report = verify(target, None, &config(), &observed, false, target);
        assert_eq!(report.failures()[0].name, "configuration");
    }
}
