//! The run's report: per-core recorders merged into one summary, rendered as text (stdout) or JSON (`--json`).

mod text;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::engine::RunOutcome;
use crate::recorder::Failure;

pub use text::render as render_text;

/// Count, extremes, mean and percentiles of one histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary { count: 0, min: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
        }
        Summary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Engine {
    pub driver: &'static str,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Streams {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Still open when the run ended: neither success nor failure.
    pub interrupted: u64,
    /// Every failure class (zero included) plus `http_<code>` for each status seen.
    pub failures: BTreeMap<String, u64>,
    pub peak_concurrent: u64,
    /// `--reconnect`: streams opened as reconnects.
    pub reconnects: u64,
    /// Streams that did not fail, over streams started.
    pub success_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Events {
    pub received: u64,
    /// Bytes read from sockets: heads, framing and payload.
    pub bytes: u64,
    pub per_second: f64,
    pub bytes_per_second: f64,
    /// Events over the summed lifetime of all streams.
    pub per_stream_per_second: f64,
    /// Gaps longer than `--stall-threshold` (0 without one).
    pub stalls: u64,
    /// `--verify-seq`: event ids skipped (lost events) and ids seen again (duplicates).
    pub lost: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    pub connect: Summary,
    pub headers: Summary,
    pub first_event: Summary,
    pub gap: Summary,
    pub stream: Summary,
    /// Each stream's longest gap between events.
    pub max_gap: Summary,
    /// With `--stream-duration`: the age of streams that ended before their length.
    pub premature_end: Summary,
    /// `--reconnect`: the wait before each reconnect.
    pub reconnect_delay: Summary,
}

/// The generator's own memory: what the streams cost it.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Resident memory once every worker was set up, before any stream connected.
    pub rss_before_kib: u64,
    /// The most resident memory sampled (every 50 ms) while every worker still ran its streams.
    pub rss_peak_kib: u64,
    /// (peak - before) / peak concurrent streams.
    pub per_stream_bytes: u64,
}

/// The whole report, shaped as the `--json` file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub target: String,
    pub engine: Engine,
    pub duration_s: f64,
    /// Ctrl-C ended the run before its duration or stream count.
    pub stopped_by_signal: bool,
    pub streams: Streams,
    pub events: Events,
    pub latency_us: Latencies,
    pub events_per_stream: Summary,
    /// Absent where /proc/self/status cannot be read.
    pub memory: Option<MemoryReport>,
    /// Each `--slo`, judged over the whole run.
    pub slos: Vec<crate::slo::Verdict>,
}

impl Report {
    pub fn new(target: &str, outcome: &RunOutcome) -> Report {
        let rec = &outcome.recorder;
        let h = &rec.histograms;
        let duration_s = outcome.elapsed.as_secs_f64();
        let per_s = |n: u64| if duration_s > 0.0 { n as f64 / duration_s } else { 0.0 };
        let mut failures = BTreeMap::new();
        for failure in Failure::ALL {
            if !matches!(failure, Failure::HttpStatus(_)) {
                failures.insert(failure.name().to_string(), rec.failures_of(failure));
            }
        }
        for (code, count) in rec.status_failures() {
            failures.insert(format!("http_{code}"), count);
        }
        let success_rate = if rec.streams_started == 0 {
            0.0
        } else {
            (rec.streams_started - rec.streams_failed) as f64 / rec.streams_started as f64
        };
        let stream_time_s = rec.stream_time_us as f64 / 1e6;
        Report {
            version: env!("CARGO_PKG_VERSION"),
            target: target.to_string(),
            engine: Engine { driver: outcome.driver.name(), threads: outcome.threads },
            duration_s,
            stopped_by_signal: outcome.stopped_by_signal,
            streams: Streams {
                started: rec.streams_started,
                completed: rec.streams_completed,
                failed: rec.streams_failed,
                interrupted: rec.streams_interrupted,
                failures,
                peak_concurrent: rec.peak_active,
                reconnects: rec.reconnects,
                success_rate,
            },
            events: Events {
                received: rec.events,
                bytes: rec.bytes,
                per_second: per_s(rec.events),
                bytes_per_second: per_s(rec.bytes),
                per_stream_per_second: if stream_time_s > 0.0 { rec.events as f64 / stream_time_s } else { 0.0 },
                stalls: rec.stalls,
                lost: rec.lost_events,
                duplicates: rec.duplicate_events,
            },
            latency_us: Latencies {
                connect: Summary::of(&h.connect_us),
                headers: Summary::of(&h.headers_us),
                first_event: Summary::of(&h.first_event_us),
                gap: Summary::of(&h.gap_us),
                stream: Summary::of(&h.stream_us),
                max_gap: Summary::of(&h.max_gap_us),
                premature_end: Summary::of(&h.premature_end_us),
                reconnect_delay: Summary::of(&h.reconnect_delay_us),
            },
            events_per_stream: Summary::of(&h.events_per_stream),
            memory: outcome.memory.map(|m| MemoryReport {
                rss_before_kib: m.rss_before_kib,
                rss_peak_kib: m.rss_peak_kib,
                per_stream_bytes: (m.rss_peak_kib.saturating_sub(m.rss_before_kib) * 1024)
                    .checked_div(rec.peak_active)
                    .unwrap_or(0),
            }),
            slos: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}
