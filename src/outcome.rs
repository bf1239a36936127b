//! What a finished run hands the report: merged recorders, stage windows, memory and how the run went. Plain data: no IO, no runtime.

use std::time::Duration;

use crate::plan::StageWindow;
use crate::recorder::Recorder;
use crate::timeline::{Entry, IntervalHistograms};

/// Everything a report needs from a finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub recorder: Recorder,
    /// `--stages`: each stage's own figures, with its place on the run's clock.
    pub stages: Vec<StageOutcome>,
    /// The IO driver the runtimes used (`io_uring` or `epoll`).
    pub driver: &'static str,
    pub threads: usize,
    pub elapsed: Duration,
    /// The process's resident memory, where /proc could tell.
    pub memory: Option<Memory>,
    /// Ctrl-C ended the run early.
    pub stopped_by_signal: bool,
    /// `--arrival-rate` ran the open model.
    pub open_model: bool,
    /// `--scenario`: its HTTP steps' names, in order.
    pub step_names: Vec<String>,
    /// `--report-interval`: the run over time, one entry per interval (the last one partial).
    pub timeline: Vec<Entry>,
    /// Each core's mean busy share over the run's intervals, 0 to 1.
    pub cores_busy: Vec<f64>,
    /// `--shard K/N`: the share of the run this process ran.
    pub shard: Option<crate::config::ShardOf>,
    /// `--start-at`: the barrier (Unix µs) and how late this process reached it (0: it waited).
    pub start_at: Option<(u64, u64)>,
    /// `--hdr-log`: each interval's merged histograms, serialized (empty without the flag).
    pub interval_histograms: Vec<IntervalHistograms>,
    /// When the run's clock started, in µs since the Unix epoch (0 if the system clock is before it).
    pub started_at_us: u64,
    /// The generator's host name (empty where it cannot be read).
    pub host: String,
}

impl RunOutcome {
    /// A finished one-thread epoll run of `recorder` (and `stages`), `elapsed` long, with nothing else: what the
    /// report's and the merge's tests build their reports from.
    #[cfg(test)]
    pub(crate) fn of(recorder: Recorder, stages: Vec<StageOutcome>, elapsed: Duration) -> RunOutcome {
        RunOutcome {
            recorder,
            stages,
            driver: "epoll",
            threads: 1,
            elapsed,
            memory: None,
            stopped_by_signal: false,
            open_model: false,
            step_names: Vec::new(),
            timeline: Vec::new(),
            cores_busy: Vec::new(),
            shard: None,
            start_at: None,
            interval_histograms: Vec::new(),
            started_at_us: 0,
            host: String::new(),
        }
    }
}

/// One stage's figures, merged over the cores.
#[derive(Debug, Clone)]
pub struct StageOutcome {
    pub window: StageWindow,
    pub recorder: Recorder,
}

/// Resident memory before any stream connected, and the most resident while streams were open.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
    /// The peak is the kernel's (VmHWM, reset once the workers were set up); false: the most of VmRSS sampled
    /// every 50 ms, which misses shorter spikes (the reset was not permitted).
    pub kernel_peak: bool,
}
