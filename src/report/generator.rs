//! Whether ssebench itself kept up: each core's busy share of every interval (its thread's CPU time over the wall
//! time) and how late its interval timer fired. A core that is always busy, or whose timers fire late, queues the
//! events it reads, and the latencies measured in those intervals include that queueing.

use serde::{Deserialize, Serialize};

use crate::report::timeline::TimelineEntry;

/// A core busier than this in an interval was saturated.
pub const BUSY_SATURATED: f64 = 0.9;
/// A core whose interval timer fired this late was saturated: its event loop could not get round in time.
pub const LOOP_LAG_SATURATED_US: u64 = 5_000;

/// The report's `generator` section (and each stage's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Generator {
    /// A core was over `BUSY_SATURATED` busy or its timer `LOOP_LAG_SATURATED_US` late in some interval, or (open
    /// model) a stream started behind its schedule.
    pub saturated: bool,
    /// The busiest share of an interval any core spent busy, 0 to 1.
    pub busy_max: f64,
    /// The latest any core's interval timer fired.
    pub loop_lag_max_us: u64,
    /// Open model: streams that started more than 10 ms behind their schedule.
    pub late_starts: u64,
    /// The run's intervals in which the generator was saturated (empty in a stage's section).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub saturated_intervals: Vec<SaturatedInterval>,
}

/// One interval in which a core was saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaturatedInterval {
    /// The interval's end, in seconds since the start.
    pub t_s: f64,
    pub busy: f64,
    pub loop_lag_us: u64,
}

fn saturated(busy: f64, loop_lag_us: u64) -> bool {
    busy > BUSY_SATURATED || loop_lag_us > LOOP_LAG_SATURATED_US
}

impl Generator {
    pub fn of(busy_max_ppm: u32, loop_lag_max_us: u64, late_starts: u64) -> Generator {
        let busy_max = f64::from(busy_max_ppm) / 1e6;
        Generator {
            saturated: saturated(busy_max, loop_lag_max_us) || late_starts > 0,
            busy_max,
            loop_lag_max_us,
            late_starts,
            saturated_intervals: Vec::new(),
        }
    }

    /// Names the intervals of `timeline` in which the generator was saturated.
    pub fn with_intervals(mut self, timeline: &[TimelineEntry]) -> Generator {
        self.saturated_intervals = timeline
            .iter()
            .filter(|e| saturated(e.generator_busy, e.loop_lag_us))
            .map(|e| SaturatedInterval { t_s: e.t_s, busy: e.generator_busy, loop_lag_us: e.loop_lag_us })
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_core_a_late_timer_or_a_late_start_is_saturation() {
        assert!(!Generator::of(500_000, 1_000, 0).saturated);
        assert!(Generator::of(950_000, 1_000, 0).saturated);
        assert!(Generator::of(100_000, 20_000, 0).saturated);
        assert!(Generator::of(100_000, 1_000, 3).saturated);
        let timeline = [
            TimelineEntry { t_s: 1.0, generator_busy: 0.5, loop_lag_us: 100, ..TimelineEntry::default() },
            TimelineEntry { t_s: 2.0, generator_busy: 0.97, loop_lag_us: 100, ..TimelineEntry::default() },
            TimelineEntry { t_s: 3.0, generator_busy: 0.2, loop_lag_us: 9_000, ..TimelineEntry::default() },
        ];
        let g = Generator::of(970_000, 9_000, 0).with_intervals(&timeline);
        let at: Vec<f64> = g.saturated_intervals.iter().map(|i| i.t_s).collect();
        assert_eq!(at, [2.0, 3.0]);
    }
}
