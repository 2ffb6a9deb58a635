//! When a restore should be done: the median of the cluster's own past
//! restores, from the moment a worker took each up to its hand-over. Pure:
//! the store supplies the durations.

use chrono::{DateTime, Duration, Utc};

/// Past restores an estimate draws on, newest first, at most.
pub const SAMPLE: usize = 10;

/// How long a restore of this cluster takes, and what says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub duration: Duration,
    /// How many past restores it comes from.
    pub restores: usize,
}

impl Estimate {
    /// "from 4 restores of this cluster, median 41 s"
    pub fn basis(&self) -> String {
        format!(
            "from {} restore{} of this cluster, median {}",
            self.restores,
            if self.restores == 1 { "" } else { "s" },
            words(self.duration)
        )
    }

    /// When a restore that started at `started` should be done.
    pub fn done_by(&self, started: DateTime<Utc>) -> DateTime<Utc> {
        started + self.duration
    }

    /// A restore still running at `now` past three times its estimate:
    /// something is wrong, and staff should look.
    pub fn overrun(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now > started + self.duration * 3
    }
}

/// The median of the newest `SAMPLE` durations (newest first); none
/// without a past restore.
pub fn estimate(past: &[Duration]) -> Option<Estimate> {
    let mut recent: Vec<Duration> = past
        .iter()
        .copied()
        .filter(|d| *d >= Duration::zero())
        .take(SAMPLE)
        .collect();
    if recent.is_empty() {
        return None;
    }
    recent.sort();
    let middle = recent.len() / 2;
    let median = if recent.len() % 2 == 1 {
        recent[middle]
    } else {
        (recent[middle - 1] + recent[middle]) / 2
    };
    Some(Estimate {
        duration: median,
        restores: recent.len(),
    })
}

/// `41 s`, `3 min 5 s`, `1 h 2 min`.
pub fn words(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_the_newest_restores() {
        assert_eq!(estimate(&[]), None);
        let one = estimate(&[Duration::seconds(41)]).unwrap();
        assert_eq!(one.duration, Duration::seconds(41));
        assert_eq!(one.basis(), "from 1 restore of this cluster, median 41 s");
        let four = estimate(&[30, 50, 41, 300].map(Duration::seconds)).unwrap();
        assert_eq!(four.duration, Duration::milliseconds(45_500));
        assert_eq!(four.restores, 4);
        // Only the newest ten count: older, slower ones are left out.
        let mut past: Vec<Duration> = vec![Duration::seconds(10); 10];
        past.extend([Duration::hours(5); 10]);
        assert_eq!(estimate(&past).unwrap().duration, Duration::seconds(10));
        assert_eq!(words(Duration::seconds(3725)), "1 h 2 min");
        assert_eq!(words(Duration::seconds(185)), "3 min 5 s");
        assert_eq!(words(Duration::seconds(120)), "2 min");
        let start = DateTime::<Utc>::UNIX_EPOCH;
        assert!(!one.overrun(start, start + Duration::seconds(123)));
        assert!(one.overrun(start, start + Duration::seconds(124)));
    }
}
