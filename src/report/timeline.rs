//! The run over time in the report: when and where it ran (`started_at`, `host`), and the timeline (one entry per
//! `--report-interval`) as JSON and as the flat CSV of `--csv`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::recorder::Failure;
use crate::timeline::{DELIVERY_LATENCIES, Entry, LATENCIES, LLM_LATENCIES, Quantiles};

/// The moment the run's clock started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartedAt {
    pub unix_us: u64,
    /// RFC 3339, UTC, to the microsecond: `2026-11-30T13:25:04.123456Z`.
    pub rfc3339: String,
}

impl StartedAt {
    pub fn of(unix_us: u64) -> StartedAt {
        StartedAt { unix_us, rfc3339: rfc3339(unix_us) }
    }
}

/// `unix_us` as RFC 3339 in UTC (the proleptic Gregorian calendar, by Howard Hinnant's `civil_from_days`).
pub fn rfc3339(unix_us: u64) -> String {
    let secs = unix_us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let day_s = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        day_s / 3600,
        day_s / 60 % 60,
        day_s % 60,
        unix_us % 1_000_000
    )
}

/// One histogram over one interval. A merged report's interval where several runs had samples has no percentiles
/// (`report::merge_timeline`: percentiles of different samples cannot be combined), so they are optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalLatency {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<u64>,
    pub max: u64,
}

impl From<Quantiles> for IntervalLatency {
    fn from(q: Quantiles) -> IntervalLatency {
        IntervalLatency { count: q.count, p50: Some(q.p50), p90: Some(q.p90), p99: Some(q.p99), max: q.max }
    }
}

/// `--openai`: token timings and output over one interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalLlm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft: Option<IntervalLatency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub itl: Option<IntervalLatency>,
    pub output_tokens: u64,
}

/// One interval of the run, over every core.
/// Read back tolerantly (`#[serde(default)]`): a field a report's writer did not know is zero or empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineEntry {
    /// The interval's end, in seconds since the start (the last one ends with the run).
    pub t_s: f64,
    /// The `--stages` stage (0 without stages) when the interval ended.
    pub stage: usize,
    /// Streams open at the interval's end.
    pub open_streams: u64,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Failures by class, non-zero only; HTTP statuses together as `http_status`.
    pub failures: BTreeMap<String, u64>,
    pub interrupted: u64,
    pub reconnects: u64,
    pub events: u64,
    pub bytes: u64,
    /// `connect_us`, `headers_us`, `first_event_us`, `gap_us`: those with samples in the interval.
    pub latency_us: BTreeMap<String, IntervalLatency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<IntervalLlm>,
    /// The busiest core's busy share of the interval (0 to 1), and the latest any core's interval timer fired.
    pub generator_busy: f64,
    pub loop_lag_us: u64,
    /// Some core was saturated in the interval (judged on its own share and timer).
    pub generator_saturated: bool,
}

impl TimelineEntry {
    pub fn of(e: &Entry) -> TimelineEntry {
        let c = &e.counts;
        TimelineEntry {
            t_s: e.end_us as f64 / 1e6,
            stage: e.stage,
            open_streams: e.open_streams,
            started: c.started,
            completed: c.completed,
            failed: c.failed,
            failures: Failure::ALL
                .iter()
                .filter(|f| c.failures[f.index()] > 0)
                .map(|f| (f.name().to_string(), c.failures[f.index()]))
                .collect(),
            interrupted: c.interrupted,
            reconnects: c.reconnects,
            events: c.events,
            bytes: c.bytes,
            latency_us: LATENCIES
                .iter()
                .chain(&DELIVERY_LATENCIES)
                .filter_map(|&name| Some((name.to_string(), e.latency(name)?.into())))
                .collect(),
            llm: e.llm.then(|| IntervalLlm {
                ttft: e.latency(LLM_LATENCIES[0]).map(Into::into),
                itl: e.latency(LLM_LATENCIES[1]).map(Into::into),
                output_tokens: c.output_tokens,
            }),
            generator_busy: f64::from(e.busy_ppm) / 1e6,
            loop_lag_us: e.loop_lag_us,
            generator_saturated: e.saturated,
        }
    }
}

/// The CSV header of `--csv`, in column order, and the columns an `--openai` run adds after it.
const CSV_HEADER: &str = "t_s,stage,open_streams,started,completed,failed,interrupted,reconnects,events,bytes,\
first_event_p50_us,first_event_p99_us,gap_p50_us,gap_p99_us,headers_p50_us,connect_p50_us";
const CSV_LLM_COLUMNS: &str = ",ttft_p50_us,ttft_p99_us,itl_p50_us,output_tokens";

/// The timeline as CSV: the header, then one row per entry; a latency cell is empty where its interval had no
/// samples. `llm_columns`: an `--openai` run.
pub fn render_csv(timeline: &[TimelineEntry], llm_columns: bool) -> String {
    let mut out = String::with_capacity(64 * (timeline.len() + 1));
    out.push_str(CSV_HEADER);
    if llm_columns {
        out.push_str(CSV_LLM_COLUMNS);
    }
    out.push('\n');
    let cell = |out: &mut String, v: Option<u64>| {
        out.push(',');
        if let Some(v) = v {
            let _ = write!(out, "{v}");
        }
    };
    for e in timeline {
        let _ = write!(
            out,
            "{:.3},{},{},{},{},{},{},{},{},{}",
            e.t_s,
            e.stage,
            e.open_streams,
            e.started,
            e.completed,
            e.failed,
            e.interrupted,
            e.reconnects,
            e.events,
            e.bytes
        );
        let lat = |name: &str| e.latency_us.get(name);
        cell(&mut out, lat("first_event_us").and_then(|l| l.p50));
        cell(&mut out, lat("first_event_us").and_then(|l| l.p99));
        cell(&mut out, lat("gap_us").and_then(|l| l.p50));
        cell(&mut out, lat("gap_us").and_then(|l| l.p99));
        cell(&mut out, lat("headers_us").and_then(|l| l.p50));
        cell(&mut out, lat("connect_us").and_then(|l| l.p50));
        if llm_columns {
            let llm = e.llm.as_ref();
            cell(&mut out, llm.and_then(|l| l.ttft).and_then(|l| l.p50));
            cell(&mut out, llm.and_then(|l| l.ttft).and_then(|l| l.p99));
            cell(&mut out, llm.and_then(|l| l.itl).and_then(|l| l.p50));
            cell(&mut out, llm.map(|l| l.output_tokens));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(rfc3339(1_764_509_104_123_456), "2025-11-30T13:25:04.123456Z");
        assert_eq!(rfc3339(4_107_542_399_999_999), "2100-02-28T23:59:59.999999Z");
    }

    #[test]
    fn csv_rows_leave_cells_empty_without_samples() {
        let entry = TimelineEntry {
            t_s: 0.25,
            stage: 1,
            open_streams: 3,
            started: 4,
            completed: 1,
            failed: 0,
            failures: BTreeMap::new(),
            interrupted: 0,
            reconnects: 0,
            events: 9,
            bytes: 100,
            latency_us: [(
                "gap_us".to_string(),
                IntervalLatency { count: 2, p50: Some(10), p90: Some(20), p99: Some(30), max: 40 },
            )]
            .into(),
            llm: None,
            ..TimelineEntry::default()
        };
        let csv = render_csv(&[entry], false);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "0.250,1,3,4,1,0,0,0,9,100,,,10,30,,");
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
        assert_eq!(render_csv(&[], true).lines().next().unwrap().split(',').count(), 20);
    }
}
