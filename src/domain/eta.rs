//! When a restore should be done: each step estimated from the cluster's
//! own past restores and restore drills, the copy scaled by the backup's
//! size and the replay by the log to replay. Pure: the store supplies the
//! past runs.

use chrono::{DateTime, Duration, Utc};

use super::restore_job::JobState;

/// Past runs an estimate draws on, newest first, at most.
pub const SAMPLE: usize = 10;

/// What a step costs besides the bytes it moves (starting processes,
/// fetching the first segment): bytes are scaled with this much added, so a
/// tiny run does not promise a tiny copy of a large one.
pub const FIXED_BYTES: f64 = 32.0 * 1024.0 * 1024.0;

/// A step is flagged when it runs past three times its estimate, and never
/// before this long: a step estimated at a fraction of a second runs three
/// times that on a busy machine without anything being wrong.
pub const OVERRUN_FLOOR: Duration = Duration::seconds(10);

/// The work a restore does: the backup it copies and the log it replays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    pub backup_bytes: i64,
    pub wal_bytes: i64,
}

impl Work {
    /// The bytes a step's duration grows with, if it grows with any.
    fn bytes_of(&self, step: JobState) -> Option<i64> {
        match step {
            JobState::RestoringSnapshot => Some(self.backup_bytes),
            JobState::ReplayingLog => Some(self.wal_bytes),
            _ => None,
        }
    }
}

/// One finished run of the cluster: how long each step took, and the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRun {
    /// A restore drill rather than a customer's restore: its last step
    /// tears the copy down instead of handing it over, so it says nothing
    /// about a hand-over.
    pub drill: bool,
    pub steps: Vec<(JobState, Duration)>,
    pub work: Option<Work>,
}

/// How long a restore of this cluster takes, step by step, and what says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub duration: Duration,
    pub steps: Vec<(JobState, Duration)>,
    /// How many past restores and drills it comes from.
    pub restores: usize,
    pub drills: usize,
    /// The work it was scaled to, when known.
    pub work: Option<Work>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Estimate {
    /// "from 4 restores and 2 restore tests of this cluster, median 41 s,
    /// scaled to 1.2 GB of backup and 310 MB of log"
    pub fn basis(&self) -> String {
        let from = match (self.restores, self.drills) {
            (r, 0) => plural(r, "restore", "restores"),
            (0, d) => plural(d, "restore test", "restore tests"),
            (r, d) => format!(
                "{} and {}",
                plural(r, "restore", "restores"),
                plural(d, "restore test", "restore tests")
            ),
        };
        let scaled = self.work.map_or(String::new(), |w| {
            format!(
                ", scaled to {} of backup and {} of log",
                size_words(w.backup_bytes),
                size_words(w.wal_bytes)
            )
        });
        format!(
            "from {from} of this cluster, median {}{scaled}",
            words(self.duration)
        )
    }

    /// When a restore that started at `started` should be done.
    pub fn done_by(&self, started: DateTime<Utc>) -> DateTime<Utc> {
        started + self.duration
    }

    /// A restore still running at `now` past three times its estimate.
    pub fn overrun(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now > started + (self.duration * 3).max(OVERRUN_FLOOR)
    }

    /// The estimate of one step, if any past run went through it.
    pub fn step(&self, step: JobState) -> Option<Duration> {
        self.steps.iter().find(|(s, _)| *s == step).map(|(_, d)| *d)
    }

    /// A step that began at `began` and still runs at `now`, past three
    /// times its own estimate: the watchdog flags it.
    pub fn step_overrun(&self, step: JobState, began: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.step(step)
            .is_some_and(|d| now > began + (d * 3).max(OVERRUN_FLOOR))
    }
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2
    })
}

/// `d` of a run that moved `then` bytes, for a run that moves `now`.
fn scaled(d: Duration, then: i64, now: i64) -> Duration {
    let factor = (now.max(0) as f64 + FIXED_BYTES) / (then.max(0) as f64 + FIXED_BYTES);
    let micros = d.num_microseconds().unwrap_or(i64::MAX) as f64 * factor;
    Duration::microseconds(micros.min(i64::MAX as f64 / 2.0) as i64)
}

/// Each step's median over the newest `SAMPLE` runs (newest first), the
/// copy and the replay scaled to `work` where both it and the run's work
/// are known; none without a past run.
pub fn estimate(past: &[PastRun], work: Option<Work>) -> Option<Estimate> {
    let recent: Vec<&PastRun> = past.iter().take(SAMPLE).collect();
    if recent.is_empty() {
        return None;
    }
    let mut steps = Vec::new();
    for step in JobState::STEPS {
        let samples: Vec<Duration> = recent
            .iter()
            .filter(|run| !(run.drill && step == JobState::Finalizing))
            .filter_map(|run| {
                let (_, d) = run.steps.iter().find(|(s, _)| *s == step)?;
                let d = (*d).max(Duration::zero());
                Some(match (work, run.work) {
                    (Some(now), Some(then)) => match (now.bytes_of(step), then.bytes_of(step)) {
                        (Some(b), Some(b_then)) => scaled(d, b_then, b),
                        _ => d,
                    },
                    _ => d,
                })
            })
            .collect();
        if let Some(d) = median(samples) {
            steps.push((step, d));
        }
    }
    let duration = steps
        .iter()
        .map(|(_, d)| *d)
        .fold(Duration::zero(), |a, b| a + b);
    Some(Estimate {
        duration,
        steps,
        restores: recent.iter().filter(|r| !r.drill).count(),
        drills: recent.iter().filter(|r| r.drill).count(),
        work,
    })
}

/// The time each step of one run took, from its state changes in order:
/// `(from, to, at)`. Only the last run counts (from its last start); a
/// step tried again (`from == to`) goes on.
pub fn step_durations(
    changes: &[(JobState, JobState, DateTime<Utc>)],
) -> Vec<(JobState, Duration)> {
    let start = changes
        .iter()
        .rposition(|(from, to, _)| *from == JobState::Queued && *to == JobState::Provisioning)
        .unwrap_or(0);
    let mut began: Option<(JobState, DateTime<Utc>)> = None;
    let mut out = Vec::new();
    for (from, to, at) in &changes[start..] {
        if from == to {
            continue;
        }
        if let Some((step, since)) = began
            && step == *from
            && step.is_build_step()
        {
            out.push((step, *at - since));
        }
        began = Some((*to, *at));
    }
    out
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

/// `8.1 MB`, `1.4 GB`, `512 B` (powers of 1024).
pub fn size_words(bytes: i64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState as S;

    fn run(drill: bool, secs: [i64; 5], work: Option<Work>) -> PastRun {
        PastRun {
            drill,
            steps: JobState::STEPS
                .into_iter()
                .zip(secs)
                .map(|(s, n)| (s, Duration::seconds(n)))
                .collect(),
            work,
        }
    }

    const MB: i64 = 1024 * 1024;

    #[test]
    fn each_step_is_the_median_of_the_newest_runs() {
        assert_eq!(estimate(&[], None), None);
        let one = estimate(&[run(false, [1, 10, 20, 5, 5], None)], None).unwrap();
        assert_eq!(one.duration, Duration::seconds(41));
        assert_eq!(one.basis(), "from 1 restore of this cluster, median 41 s");
        assert_eq!(one.step(S::ReplayingLog), Some(Duration::seconds(20)));
        let three = estimate(
            &[
                run(false, [1, 10, 20, 5, 5], None),
                run(false, [1, 30, 60, 5, 5], None),
                run(false, [1, 20, 40, 5, 5], None),
            ],
            None,
        )
        .unwrap();
        assert_eq!(three.duration, Duration::seconds(71));
        // Only the newest ten count.
        let mut past: Vec<PastRun> = (0..10).map(|_| run(false, [1, 1, 1, 1, 1], None)).collect();
        past.extend((0..10).map(|_| run(false, [900; 5], None)));
        assert_eq!(
            estimate(&past, None).unwrap().duration,
            Duration::seconds(5)
        );
    }

    #[test]
    fn drills_count_except_for_their_teardown() {
        let past = [
            run(true, [1, 10, 20, 5, 300], None),
            run(false, [1, 10, 20, 5, 4], None),
        ];
        let e = estimate(&past, None).unwrap();
        assert_eq!(e.step(S::Finalizing), Some(Duration::seconds(4)));
        assert_eq!((e.restores, e.drills), (1, 1));
        assert_eq!(
            e.basis(),
            "from 1 restore and 1 restore test of this cluster, median 40 s"
        );
        let drills_only = estimate(&[run(true, [1, 10, 20, 5, 300], None)], None).unwrap();
        assert_eq!(drills_only.step(S::Finalizing), None);
        assert_eq!(drills_only.duration, Duration::seconds(36));
    }

    #[test]
    fn the_copy_scales_with_the_backup_and_the_replay_with_the_log() {
        let then = Work {
            backup_bytes: 96 * MB,
            wal_bytes: 32 * MB,
        };
        let now = Work {
            backup_bytes: 224 * MB,
            wal_bytes: 0,
        };
        let e = estimate(&[run(false, [2, 10, 20, 4, 4], Some(then))], Some(now)).unwrap();
        // (224 + 32) / (96 + 32) = 2; (0 + 32) / (32 + 32) = 0.5.
        assert_eq!(e.step(S::RestoringSnapshot), Some(Duration::seconds(20)));
        assert_eq!(e.step(S::ReplayingLog), Some(Duration::seconds(10)));
        assert_eq!(e.step(S::Provisioning), Some(Duration::seconds(2)));
        assert!(
            e.basis()
                .ends_with("scaled to 224.0 MB of backup and 0 B of log"),
            "{}",
            e.basis()
        );
        // A run whose work is unknown counts as it was.
        let plain = estimate(&[run(false, [2, 10, 20, 4, 4], None)], Some(now)).unwrap();
        assert_eq!(
            plain.step(S::RestoringSnapshot),
            Some(Duration::seconds(10))
        );
    }

    #[test]
    fn overruns_are_three_times_the_estimate_and_never_under_the_floor() {
        let e = estimate(&[run(false, [1, 10, 20, 5, 5], None)], None).unwrap();
        let start = DateTime::<Utc>::UNIX_EPOCH;
        assert!(!e.overrun(start, start + Duration::seconds(123)));
        assert!(e.overrun(start, start + Duration::seconds(124)));
        assert!(!e.step_overrun(S::ReplayingLog, start, start + Duration::seconds(60)));
        assert!(e.step_overrun(S::ReplayingLog, start, start + Duration::seconds(61)));
        // A one-second step is not flagged after four.
        assert!(!e.step_overrun(S::Provisioning, start, start + Duration::seconds(4)));
        assert!(e.step_overrun(S::Provisioning, start, start + Duration::seconds(11)));
    }

    #[test]
    fn step_durations_come_from_the_last_run_s_changes() {
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(s);
        let changes = [
            // An earlier run that failed.
            (S::Queued, S::Provisioning, at(0)),
            (S::Provisioning, S::Failing, at(50)),
            (S::Failing, S::Failed, at(51)),
            (S::Failed, S::Queued, at(60)),
            // The run that counts, with a retried snapshot restore.
            (S::Queued, S::Provisioning, at(100)),
            (S::Provisioning, S::RestoringSnapshot, at(101)),
            (S::RestoringSnapshot, S::RestoringSnapshot, at(105)),
            (S::RestoringSnapshot, S::ReplayingLog, at(111)),
            (S::ReplayingLog, S::Verifying, at(131)),
            (S::Verifying, S::Finalizing, at(135)),
            (S::Finalizing, S::Succeeded, at(136)),
        ];
        assert_eq!(
            step_durations(&changes),
            vec![
                (S::Provisioning, Duration::seconds(1)),
                (S::RestoringSnapshot, Duration::seconds(10)),
                (S::ReplayingLog, Duration::seconds(20)),
                (S::Verifying, Duration::seconds(4)),
                (S::Finalizing, Duration::seconds(1)),
            ]
        );
        assert!(step_durations(&[]).is_empty());
    }

    #[test]
    fn words_for_durations_and_sizes() {
        assert_eq!(words(Duration::seconds(3725)), "1 h 2 min");
        assert_eq!(words(Duration::seconds(185)), "3 min 5 s");
        assert_eq!(words(Duration::seconds(120)), "2 min");
        assert_eq!(words(Duration::seconds(41)), "41 s");
        assert_eq!(size_words(22 * MB + MB / 10), "22.1 MB");
        assert_eq!(size_words(512), "512 B");
    }
}
