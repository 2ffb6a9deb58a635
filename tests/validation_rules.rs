//! SPEC §4: every validation error code from a table, and properties of the
//! restorable window that must hold for any catalog.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use restore_desk::domain::catalog::{
    Catalog, ClusterLife, LogSpan, RetentionPolicy, Snapshot, Zone, ZoneSet, restorable_window,
};
use restore_desk::domain::validation::{
    ClusterName, TargetContext, TargetInput, ValidationCode, check_target, format_offset,
    parse_target,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// 60 days of daily snapshots; those older than 20 days only in `az1`;
/// continuous log except a gap 10 days ago.
fn catalog() -> Catalog {
    let snapshots = (0..60)
        .map(|days_ago| {
            let finished = now() - Duration::days(days_ago) - Duration::hours(3);
            Snapshot {
                id: format!("s{days_ago}"),
                started_at: finished - Duration::minutes(20),
                finished_at: finished,
                zones: if days_ago > 20 {
                    ZoneSet::of(&[Zone::Az1])
                } else {
                    ZoneSet::ALL
                },
            }
        })
        .collect();
    let gap_start = now() - Duration::days(10);
    Catalog {
        snapshots,
        log: vec![
            LogSpan {
                from: now() - Duration::days(61),
                to: gap_start,
                zones: ZoneSet::ALL,
            },
            LogSpan {
                from: gap_start + Duration::hours(1),
                to: now() - Duration::minutes(1),
                zones: ZoneSet::ALL,
            },
        ],
    }
}

fn ctx(catalog: &Catalog, online: ZoneSet, life: ClusterLife) -> TargetContext<'_> {
    TargetContext {
        catalog,
        life,
        online,
        policy: RetentionPolicy::default(),
        now: now(),
        zone: chrono_tz::Tz::UTC,
    }
}

fn live() -> ClusterLife {
    ClusterLife {
        created_at: now() - Duration::days(61),
        deleted_at: None,
    }
}

fn local(time: &str, zone: &str) -> TargetInput {
    TargetInput::Local {
        local_time: time.into(),
        time_zone: zone.into(),
        utc_offset: None,
    }
}

#[test]
fn every_target_error_code_from_a_table() {
    let catalog = catalog();
    let all_online = ZoneSet::ALL;
    let az1_down = ZoneSet::ALL.without(Zone::Az1);
    let young = Catalog {
        snapshots: vec![Snapshot {
            id: "first".into(),
            started_at: now() - Duration::days(2),
            finished_at: now() - Duration::days(2) + Duration::minutes(5),
            zones: ZoneSet::ALL,
        }],
        log: vec![LogSpan {
            from: now() - Duration::days(2),
            to: now(),
            zones: ZoneSet::ALL,
        }],
    };
    let deleted_long_ago = ClusterLife {
        created_at: now() - Duration::days(61),
        deleted_at: Some(now() - Duration::days(8)),
    };
    let deleted_lately = ClusterLife {
        created_at: now() - Duration::days(61),
        deleted_at: Some(now() - Duration::days(3)),
    };

    // (what, catalog, online, life, target, expected)
    type Row<'a> = (
        &'a str,
        &'a Catalog,
        ZoneSet,
        ClusterLife,
        DateTime<Utc>,
        Option<ValidationCode>,
    );
    let rows: Vec<Row> = vec![
        (
            "an hour ago",
            &catalog,
            all_online,
            live(),
            now() - Duration::hours(1),
            None,
        ),
        (
            "tomorrow",
            &catalog,
            all_online,
            live(),
            now() + Duration::days(1),
            Some(ValidationCode::TargetInFuture),
        ),
        (
            "log not archived yet",
            &catalog,
            all_online,
            live(),
            now() - Duration::seconds(10),
            Some(ValidationCode::TargetInFuture),
        ),
        (
            "36 days ago",
            &catalog,
            all_online,
            live(),
            now() - Duration::days(36),
            Some(ValidationCode::TargetOutsideRetention),
        ),
        (
            "before first snapshot",
            &young,
            all_online,
            live(),
            now() - Duration::days(3),
            Some(ValidationCode::TargetBeforeEarliestRestorePoint),
        ),
        (
            "inside the log gap",
            &catalog,
            all_online,
            live(),
            now() - Duration::days(10) + Duration::minutes(30),
            Some(ValidationCode::NoBackupInOnlineZone),
        ),
        (
            "25 days ago, az1 down",
            &catalog,
            az1_down,
            live(),
            now() - Duration::days(25),
            Some(ValidationCode::NoBackupInOnlineZone),
        ),
        (
            "25 days ago, az1 up",
            &catalog,
            all_online,
            live(),
            now() - Duration::days(25),
            None,
        ),
        (
            "5 days ago, az1 down",
            &catalog,
            az1_down,
            live(),
            now() - Duration::days(5),
            None,
        ),
        (
            "nothing online",
            &catalog,
            ZoneSet::NONE,
            live(),
            now() - Duration::days(5),
            Some(ValidationCode::NoBackupInOnlineZone),
        ),
        (
            "deleted 8 days ago",
            &catalog,
            all_online,
            deleted_long_ago,
            now() - Duration::days(9),
            Some(ValidationCode::ClusterNotFound),
        ),
        (
            "deleted 3 days ago, before deletion",
            &catalog,
            all_online,
            deleted_lately,
            now() - Duration::days(4),
            None,
        ),
        (
            "deleted 3 days ago, after deletion",
            &catalog,
            all_online,
            deleted_lately,
            now() - Duration::days(1),
            Some(ValidationCode::TargetInFuture),
        ),
    ];
    for (what, catalog, online, life, target, expected) in rows {
        let got = check_target(target, &ctx(catalog, online, life))
            .err()
            .map(|e| e.code);
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn every_parse_error_code_from_a_table() {
    let rows = [
        (
            local("2026-03-29T02:30", "Europe/Amsterdam"),
            Some(ValidationCode::NonexistentLocalTime),
        ),
        (
            local("2026-10-25T02:30", "Europe/Amsterdam"),
            Some(ValidationCode::AmbiguousLocalTime),
        ),
        (
            local("2026-11-01T01:30", "America/New_York"),
            Some(ValidationCode::AmbiguousLocalTime),
        ),
        (
            local("2026-03-08T02:30", "America/New_York"),
            Some(ValidationCode::NonexistentLocalTime),
        ),
        (local("2026-10-25T03:30", "Europe/Amsterdam"), None),
        (
            local("yesterday", "Europe/Amsterdam"),
            Some(ValidationCode::InvalidTimestamp),
        ),
        (
            local("2026-10-25T03:30", "Mars/Olympus_Mons"),
            Some(ValidationCode::InvalidTimestamp),
        ),
        (
            local("2026-02-30T03:30", "UTC"),
            Some(ValidationCode::InvalidTimestamp),
        ),
        (
            TargetInput::Instant {
                target_time: "2026-10-25 03:30".into(),
                time_zone: None,
            },
            Some(ValidationCode::InvalidTimestamp),
        ),
        (
            TargetInput::Instant {
                target_time: "2026-10-25T03:30:00Z".into(),
                time_zone: None,
            },
            None,
        ),
    ];
    for (input, expected) in rows {
        let got = parse_target(&input).err().map(|e| e.code);
        assert_eq!(got, expected, "{input:?}");
    }
    assert_eq!(
        ClusterName::parse("Orders_Restored").unwrap_err().code,
        ValidationCode::InvalidClusterName
    );
}

#[test]
fn every_error_code_has_a_stable_name() {
    for code in ValidationCode::ALL {
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
}

/// A catalog with no gaps: daily snapshots in every zone and continuous log.
fn gapless(age_days: i64, log_lag_secs: i64) -> Catalog {
    let created = now() - Duration::days(age_days);
    let snapshots = (0..age_days)
        .map(|d| {
            let finished = created + Duration::days(d) + Duration::minutes(30);
            Snapshot {
                id: format!("s{d}"),
                started_at: created + Duration::days(d),
                finished_at: finished,
                zones: ZoneSet::ALL,
            }
        })
        .collect();
    Catalog {
        snapshots,
        log: vec![LogSpan {
            from: created,
            to: now() - Duration::seconds(log_lag_secs),
            zones: ZoneSet::ALL,
        }],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn targets_inside_the_window_validate(
        age_days in 2_i64..80,
        lag in 0_i64..600,
        fraction in 0.0_f64..=1.0,
    ) {
        let catalog = gapless(age_days, lag);
        let life = ClusterLife { created_at: now() - Duration::days(age_days), deleted_at: None };
        let c = ctx(&catalog, ZoneSet::ALL, life);
        let window = restorable_window(&catalog, &life, &c.policy, now()).unwrap();
        let span = (window.latest - window.earliest).num_microseconds().unwrap();
        let target = window.earliest + Duration::microseconds((span as f64 * fraction) as i64);
        prop_assert!(check_target(target, &c).is_ok(), "{target} in {window:?}");
    }

    #[test]
    fn targets_outside_the_window_get_the_right_code(
        age_days in 2_i64..80,
        lag in 1_i64..600,
        before in proptest::bool::ANY,
        offset_secs in 1_i64..(90 * 86_400),
    ) {
        let catalog = gapless(age_days, lag);
        let life = ClusterLife { created_at: now() - Duration::days(age_days), deleted_at: None };
        let c = ctx(&catalog, ZoneSet::ALL, life);
        let window = restorable_window(&catalog, &life, &c.policy, now()).unwrap();
        let target = if before {
            window.earliest - Duration::seconds(offset_secs)
        } else {
            window.latest + Duration::seconds(offset_secs)
        };
        let code = check_target(target, &c).unwrap_err().code;
        let expected = if !before {
            ValidationCode::TargetInFuture
        } else if target < now() - c.policy.retention {
            ValidationCode::TargetOutsideRetention
        } else {
            ValidationCode::TargetBeforeEarliestRestorePoint
        };
        prop_assert_eq!(code, expected);
    }

    #[test]
    fn utc_round_trips_through_every_zone(
        zone_index in 0..chrono_tz::TZ_VARIANTS.len(),
        secs in 0_i64..(20 * 365 * 86_400),
    ) {
        let zone: Tz = chrono_tz::TZ_VARIANTS[zone_index];
        let utc = Utc.with_ymd_and_hms(2010, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
        let local = utc.with_timezone(&zone);
        use chrono::Offset;
        let input = TargetInput::Local {
            local_time: local.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
            time_zone: zone.name().to_string(),
            utc_offset: Some(format_offset(local.offset().fix())),
        };
        let parsed = parse_target(&input).unwrap();
        prop_assert_eq!(parsed.utc, utc);
        prop_assert_eq!(parsed.time_zone, zone);
        // Without the offset, the same wall-clock time either reads back the
        // same instant or is refused as ambiguous: never silently another one.
        let bare = TargetInput::Local {
            local_time: local.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
            time_zone: zone.name().to_string(),
            utc_offset: None,
        };
        match parse_target(&bare) {
            Ok(t) => prop_assert_eq!(t.utc, utc),
            Err(e) => prop_assert_eq!(e.code, ValidationCode::AmbiguousLocalTime),
        }
    }
}
