//! A cluster's restorable window drawn as a timeline: the retention period
//! left to right, one row per zone with its snapshot copies and archived
//! log (gaps show as gaps), offline zones greyed, the restorable window
//! shaded, and the chosen target marked. Coordinates are computed here; the
//! template (`timeline.html`) only draws them as SVG.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::domain::catalog::{Catalog, RetentionPolicy, Window, Zone, ZoneSet};
use crate::web::views::{local_in, precise_in, zones_back};

/// Width of the drawing in SVG units; it scales to the page.
pub const WIDTH: i64 = 1000;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 990.0;
const TOP: i64 = 8;
const ROW: i64 = 38;

#[derive(Debug, Clone)]
pub struct Tick {
    pub x: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Span {
    pub x: String,
    pub width: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct ZoneRow {
    pub zone: &'static str,
    pub online: bool,
    pub label_y: i64,
    pub tick_y: i64,
    pub log_y: i64,
    pub snapshots: Vec<Tick>,
    pub log: Vec<Span>,
}

#[derive(Debug, Clone)]
pub struct AxisMark {
    pub x: String,
    pub label: String,
    /// `middle`, or `end` for the last mark so it stays inside the drawing.
    pub anchor: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Marker {
    pub x: String,
    pub label: String,
    /// Whether the marker sits inside the restorable window.
    pub inside: bool,
    /// Label anchored to the left of the line when near the right edge.
    pub anchor_end: bool,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Unique per page, for `aria-labelledby`.
    pub id: String,
    pub height: i64,
    pub plot_left: String,
    pub plot_width: String,
    pub plot_bottom: i64,
    pub rows: Vec<ZoneRow>,
    pub window: Option<Span>,
    pub axis: Vec<AxisMark>,
    pub target: Option<Marker>,
    pub deleted: Option<Marker>,
    pub title: String,
    /// The same facts in words, for screen readers and for the page.
    pub summary: String,
}

/// A timeline as the HTML pages embed it.
#[derive(askama::Template)]
#[template(path = "timeline.html")]
pub struct TimelineHtml<'a> {
    pub t: &'a Timeline,
}

pub struct TimelineInput<'a> {
    pub id: &'a str,
    pub cluster_name: &'a str,
    pub catalog: &'a Catalog,
    pub online: ZoneSet,
    /// Every zone counted: what is drawn.
    pub window: Option<Window>,
    /// What the zones online now can restore: what the summary states.
    pub window_now: Option<Window>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub target: Option<DateTime<Utc>>,
    pub policy: RetentionPolicy,
    pub now: DateTime<Utc>,
    pub zone: Tz,
}

fn fmt(x: f64) -> String {
    format!("{x:.1}")
}

/// Where `t` falls on a drawing of the retention period ending `now`.
fn x_at(t: DateTime<Utc>, now: DateTime<Utc>, policy: &RetentionPolicy) -> f64 {
    let start = now - policy.retention;
    let span_secs = (now - start).num_seconds().max(1) as f64;
    let clamped = t.clamp(start, now);
    LEFT + (RIGHT - LEFT) * ((clamped - start).num_seconds() as f64 / span_secs)
}

fn marker_at(
    t: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RetentionPolicy,
    label: String,
    inside: bool,
) -> Marker {
    let x = x_at(t, now, policy);
    Marker {
        x: fmt(x),
        label,
        inside,
        anchor_end: x > RIGHT - 160.0,
    }
}

/// The chosen target's marker, for the drawing and for the form's live check.
pub fn target_marker(
    t: DateTime<Utc>,
    window: Option<Window>,
    now: DateTime<Utc>,
    policy: &RetentionPolicy,
    zone: Tz,
) -> Marker {
    let inside = window.is_some_and(|w| w.contains(t));
    let when = local_in(t, zone);
    let label = if t < now - policy.retention {
        format!("target {when} (before the window)")
    } else if t > now {
        format!("target {when} (in the future)")
    } else {
        format!("target {when}")
    };
    marker_at(t, now, policy, label, inside)
}

pub fn build(input: &TimelineInput<'_>) -> Timeline {
    let end = input.now;
    let start = end - input.policy.retention;
    let x_of = |t: DateTime<Utc>| x_at(t, input.now, &input.policy);
    let when = |t: DateTime<Utc>| precise_in(t, input.zone);
    let mut rows = Vec::new();
    for (i, zone) in Zone::ALL.into_iter().enumerate() {
        let top = TOP + i as i64 * ROW;
        let snapshots = input
            .catalog
            .snapshots
            .iter()
            .filter(|s| s.zones.contains(zone) && s.finished_at >= start && s.finished_at <= end)
            .map(|s| Tick {
                x: fmt(x_of(s.finished_at) - 1.5),
                title: format!(
                    "Snapshot {} in {zone}, finished {}",
                    s.id,
                    when(s.finished_at)
                ),
            })
            .collect();
        let log = input
            .catalog
            .log_in(zone)
            .into_iter()
            .filter(|(from, to)| *to >= start && *from <= end)
            .map(|(from, to)| {
                let (a, b) = (x_of(from), x_of(to));
                Span {
                    x: fmt(a),
                    width: fmt((b - a).max(1.0)),
                    title: format!("Archived log in {zone} from {} to {}", when(from), when(to)),
                }
            })
            .collect();
        rows.push(ZoneRow {
            zone: zone.as_str(),
            online: input.online.contains(zone),
            label_y: top + 19,
            tick_y: top + 4,
            log_y: top + 24,
            snapshots,
            log,
        });
    }
    let plot_bottom = TOP + 3 * ROW;
    let window = input.window.map(|w| {
        let (a, b) = (x_of(w.earliest), x_of(w.latest));
        Span {
            x: fmt(a),
            width: fmt((b - a).max(2.0)),
            title: format!("Restorable from {} to {}", when(w.earliest), when(w.latest)),
        }
    });
    let mut axis = Vec::new();
    let days = input.policy.retention.num_days().max(1);
    let step = if days > 60 { 14 } else { 7 };
    let mut day = 0;
    while day <= days {
        let t = start + Duration::days(day);
        axis.push(AxisMark {
            x: fmt(x_of(t)),
            label: t.with_timezone(&input.zone).format("%-d %b").to_string(),
            anchor: "middle",
        });
        day += step;
    }
    axis.push(AxisMark {
        x: fmt(RIGHT),
        label: "now".into(),
        anchor: "end",
    });
    // Drop a weekly label that would collide with "now".
    if axis.len() >= 2 {
        let last = axis.len() - 2;
        let gap: f64 = RIGHT - axis[last].x.parse::<f64>().unwrap_or(0.0);
        if gap < 40.0 {
            axis.remove(last);
        }
    }
    let target = input
        .target
        .map(|t| target_marker(t, input.window, input.now, &input.policy, input.zone));
    let deleted = input
        .deleted_at
        .filter(|d| *d >= start)
        .map(|d| marker_at(d, input.now, &input.policy, "deleted".into(), false));

    let mut summary = match input.window_now {
        Some(w) => format!(
            "{} can be restored now to any moment from {} to {} ({}), where the log has no gap.",
            input.cluster_name,
            local_in(w.earliest, input.zone),
            local_in(w.latest, input.zone),
            input.zone.name()
        ),
        None => format!("{} has no restorable moment right now.", input.cluster_name),
    };
    let offline: Vec<&str> = rows.iter().filter(|r| !r.online).map(|r| r.zone).collect();
    if let Some(whole) = input.window
        && input
            .window_now
            .is_none_or(|now| whole.earliest < now.earliest)
    {
        summary.push_str(&format!(
            " From {} when {}.",
            local_in(whole.earliest, input.zone),
            zones_back(&offline)
        ));
    }
    for row in &rows {
        summary.push_str(&format!(
            " {}: {}, {} snapshot{}.",
            row.zone,
            if row.online { "online" } else { "offline" },
            row.snapshots.len(),
            if row.snapshots.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(target) = &target {
        summary.push_str(&format!(
            " The chosen {} is {} the restorable window.",
            target.label,
            if target.inside { "inside" } else { "outside" }
        ));
    }
    Timeline {
        id: input.id.to_string(),
        height: plot_bottom + 26,
        plot_left: fmt(LEFT),
        plot_width: fmt(RIGHT - LEFT),
        plot_bottom,
        rows,
        window,
        axis,
        target,
        deleted,
        title: format!(
            "Backups of {} over the last {} days",
            input.cluster_name,
            input.policy.retention.num_days()
        ),
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{LogSpan, Snapshot};
    use chrono::TimeZone;

    #[test]
    fn draws_snapshots_per_zone_log_gaps_window_and_target() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let catalog = Catalog {
            snapshots: vec![Snapshot {
                id: "s1".into(),
                started_at: now - Duration::days(10),
                finished_at: now - Duration::days(10),
                zones: ZoneSet::of(&[Zone::Az1, Zone::Az2]),
            }],
            log: vec![
                LogSpan {
                    from: now - Duration::days(10),
                    to: now - Duration::days(5),
                    zones: ZoneSet::ALL,
                },
                LogSpan {
                    from: now - Duration::days(4),
                    to: now,
                    zones: ZoneSet::ALL,
                },
            ],
        };
        let window = Window {
            earliest: now - Duration::days(10),
            latest: now,
        };
        let t = build(&TimelineInput {
            id: "t",
            cluster_name: "orders",
            catalog: &catalog,
            online: ZoneSet::of(&[Zone::Az2, Zone::Az3]),
            window: Some(window),
            window_now: Some(window),
            deleted_at: None,
            target: Some(now - Duration::days(2)),
            policy: RetentionPolicy::default(),
            now,
            zone: Tz::UTC,
        });
        assert_eq!(t.rows.len(), 3);
        assert!(!t.rows[0].online);
        assert_eq!(t.rows[0].snapshots.len(), 1);
        assert_eq!(t.rows[2].snapshots.len(), 0);
        assert_eq!(t.rows[1].log.len(), 2, "the gap splits the log bar");
        assert!(t.target.as_ref().unwrap().inside);
        assert!(t.summary.contains("az1: offline"));
    }
}
