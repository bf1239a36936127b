//! Whether ssebench itself kept up: each core's busy share of every interval (its thread's CPU time over the wall
//! time) and how late its interval timer fired. A core that is nearly always busy, or busy and late, queues the
//! events it reads, and the latencies measured in those intervals include that queueing. A timer late while the
//! core was mostly idle is the host's other work taking the CPU (on one machine, often the target).

use serde::{Deserialize, Serialize};

use crate::recorder::{BUSY_LOADED_PPM, LOOP_LAG_SATURATED_US};
use crate::report::timeline::TimelineEntry;

/// Open model: more than this share of started streams starting late saturates the generator.
const LATE_STARTS_SATURATED: f64 = 0.01;

/// The report's `generator` section (and each stage's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Generator {
    /// In some interval a core was over 90% busy, or at least 50% busy with its timer more than 5 ms late; or (open
    /// model) more than 1% of the streams started behind their schedule.
    pub saturated: bool,
    /// The busiest share of an interval any core spent busy, 0 to 1.
    pub busy_max: f64,
    /// The latest any core's interval timer fired.
    pub loop_lag_max_us: u64,
    /// Core-intervals saturated, and those whose timer was late while the core was mostly idle (contention).
    pub saturated_intervals_count: u64,
    pub contended_intervals: u64,
    /// Open model: streams that started more than 10 ms behind their schedule.
    pub late_starts: u64,
    /// The run's intervals in which the generator was saturated (empty in a stage's section).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub saturated_intervals: Vec<SaturatedInterval>,
    /// Each core's mean busy share over the run, 0 to 1 (empty in a stage's section).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cores_busy: Vec<f64>,
}

/// One interval in which a core was saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaturatedInterval {
    /// The interval's end, in seconds since the start.
    pub t_s: f64,
    pub busy: f64,
    pub loop_lag_us: u64,
}

/// What [`Generator::of`] reads from a recorder.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub busy_max_ppm: u32,
    pub loop_lag_max_us: u64,
    pub saturated_intervals: u32,
    pub contended_intervals: u32,
    pub late_starts: u64,
    pub started: u64,
}

impl Generator {
    pub fn of(load: Load) -> Generator {
        let late_share = if load.started > 0 { load.late_starts as f64 / load.started as f64 } else { 0.0 };
        Generator {
            saturated: load.saturated_intervals > 0 || late_share > LATE_STARTS_SATURATED,
            busy_max: f64::from(load.busy_max_ppm) / 1e6,
            loop_lag_max_us: load.loop_lag_max_us,
            saturated_intervals_count: u64::from(load.saturated_intervals),
            contended_intervals: u64::from(load.contended_intervals),
            late_starts: load.late_starts,
            saturated_intervals: Vec::new(),
            cores_busy: Vec::new(),
        }
    }

    /// Names the intervals of `timeline` in which a core was saturated (each judged on its own share and timer).
    pub fn with_intervals(mut self, timeline: &[TimelineEntry]) -> Generator {
        self.saturated_intervals = timeline
            .iter()
            .filter(|e| e.generator_saturated)
            .map(|e| SaturatedInterval { t_s: e.t_s, busy: e.generator_busy, loop_lag_us: e.loop_lag_us })
            .collect();
        self
    }

    /// A timer late while the core was mostly idle, in words, for the text report.
    pub fn contention(&self) -> Option<String> {
        (self.contended_intervals > 0).then(|| {
            format!(
                "in {} core-intervals a timer fired more than {} late while the core was under {:.0}% busy: the \
                 host's other work (the target, if it runs here) had the CPU",
                self.contended_intervals,
                crate::units::format_micros(LOOP_LAG_SATURATED_US as f64, 0),
                f64::from(BUSY_LOADED_PPM) / 1e4
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::interval_saturated;

    fn load(busy_max_ppm: u32, saturated_intervals: u32, late_starts: u64) -> Load {
        Load {
            busy_max_ppm,
            loop_lag_max_us: 1_000,
            saturated_intervals,
            contended_intervals: 0,
            late_starts,
            started: 1_000,
        }
    }

    #[test]
    fn a_saturated_interval_or_many_late_starts_is_saturation() {
        assert!(!Generator::of(load(500_000, 0, 0)).saturated);
        assert!(Generator::of(load(950_000, 1, 0)).saturated);
        assert!(!Generator::of(load(100_000, 0, 5)).saturated, "0.5% of starts late");
        assert!(Generator::of(load(100_000, 0, 50)).saturated, "5% of starts late");
    }

    #[test]
    fn a_late_timer_counts_only_on_a_busy_core() {
        assert!(interval_saturated(950_000, 100));
        assert!(interval_saturated(600_000, 9_000));
        assert!(!interval_saturated(100_000, 9_000), "late while idle: contention, not saturation");
        let timeline = [
            TimelineEntry { t_s: 1.0, generator_busy: 0.5, loop_lag_us: 100, ..TimelineEntry::default() },
            TimelineEntry { t_s: 2.0, generator_busy: 0.97, generator_saturated: true, ..TimelineEntry::default() },
            // The busiest core and the latest timer may be different cores': only the flag says saturated.
            TimelineEntry { t_s: 3.0, generator_busy: 0.6, loop_lag_us: 9_000, ..TimelineEntry::default() },
            TimelineEntry {
                t_s: 4.0,
                generator_busy: 0.6,
                loop_lag_us: 9_000,
                generator_saturated: true,
                ..TimelineEntry::default()
            },
        ];
        let g = Generator::of(load(970_000, 2, 0)).with_intervals(&timeline);
        let at: Vec<f64> = g.saturated_intervals.iter().map(|i| i.t_s).collect();
        assert_eq!(at, [2.0, 4.0]);
    }
}
