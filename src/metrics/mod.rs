//! `--metrics-addr`'s figures, sans IO: the run's running totals (`timeline::Collector::totals`) and its last
//! timeline entry in, the Prometheus text exposition format (0.0.4) out, rendered once per interval on the engine's
//! thread. Counters are cumulative from the start, latency histograms cumulative in fixed exponential buckets (so
//! `histogram_quantile` works, and several generators' series add up in PromQL), every series labelled with the run's
//! id. No clock, no socket: `metrics::serve` answers the scrapes.

pub mod serve;

use std::fmt::Write;
use std::sync::LazyLock;

use hdrhistogram::Histogram;

use crate::recorder::Failure;
use crate::timeline::{DELIVERY_LATENCIES, Entry, Interval, LATENCIES, LLM_LATENCIES};

/// The latency histograms' upper bounds (`le`), in µs: 100 µs × 2^k for k = 0..=20, that is 100 µs to 104.8576 s,
/// then `+Inf`. Fixed, so every generator and every run has the same buckets and their series sum in PromQL; doubling,
/// so `histogram_quantile`'s linear interpolation inside a bucket is off by less than the bucket's width.
pub const BUCKET_BOUNDS_US: [u64; 21] = {
    let mut bounds = [0; 21];
    let mut k = 0;
    while k < bounds.len() {
        bounds[k] = 100 << k;
        k += 1;
    }
    bounds
};

/// Each interval histogram's metric name and help, in `LATENCIES` then `LLM_LATENCIES` order.
const HISTOGRAM_METRICS: [(&str, &str); LATENCIES.len() + LLM_LATENCIES.len() + DELIVERY_LATENCIES.len()] = [
    ("ssebench_connect_seconds", "TCP connect time of each stream's connection."),
    ("ssebench_headers_seconds", "Time from a stream's request to its response head."),
    ("ssebench_first_event_seconds", "Time from a stream's request to its first event."),
    ("ssebench_gap_seconds", "Time between consecutive events of a stream."),
    ("ssebench_ttft_seconds", "Time from a completion's request to its first output token."),
    ("ssebench_itl_seconds", "Time between consecutive output chunks of a completion (inter-token latency)."),
    ("ssebench_delivery_lag_seconds", "Time from an event's send time (--send-time) to its receipt."),
];

/// What the exposition knows of the run, fixed at its start (from the engine's plan, worked out once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `--run-id`: the `run` label of every series.
    pub run_id: String,
    /// `--openai`: the TTFT, ITL and token series apply.
    pub llm: bool,
    /// `--send-time`: the delivery lag series applies.
    pub delivery: bool,
    /// `--stages`: each stage's target of open streams, in order; empty without stages.
    pub stage_targets: Vec<usize>,
    /// The target without `--stages`: `-c` users, or `--max-streams` with `--arrival-rate`.
    pub target_streams: usize,
}

/// One histogram's figures in `BUCKET_BOUNDS_US`' buckets (not yet cumulative: `counts[i]` holds the values above
/// bound i-1 up to bound i, the last slot those above every bound), with their count and sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub counts: [u64; BUCKET_BOUNDS_US.len() + 1],
    pub count: u64,
    pub sum_us: u128,
}

impl Buckets {
    /// Sorts `h`'s recorded values into the buckets: one pass over its non-empty HdrHistogram buckets (a few hundred
    /// at most), once per interval. A value goes by its HdrHistogram bucket's lowest value, so one recorded exactly
    /// at a bound counts as `le` it; one within HdrHistogram's precision (1%) above a bound may too. The sum takes
    /// each bucket's middle value.
    pub fn of(h: &Histogram<u64>) -> Buckets {
        let mut buckets = Buckets { counts: [0; BUCKET_BOUNDS_US.len() + 1], count: 0, sum_us: 0 };
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let low_us = h.lowest_equivalent(v.value_iterated_to());
            buckets.counts[BUCKET_BOUNDS_US.partition_point(|&bound| bound < low_us)] += n;
            buckets.count += n;
            buckets.sum_us += u128::from(h.median_equivalent(v.value_iterated_to())) * u128::from(n);
        }
        buckets
    }
}

/// The exposition of the run so far: `totals` is every emitted interval added up, `last` the newest timeline entry
/// (its open streams and stage; `None` before the first interval ends). About 10 KB of text, once per interval.
pub fn render(shape: &Shape, totals: &Interval, last: Option<&Entry>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let run = format!("run=\"{}\"", escape_label_value(&shape.run_id));
    let c = &totals.counts;
    let counters: [(&str, &str, u64); 6] = [
        ("ssebench_streams_started_total", "Streams started (requests sent).", c.started),
        ("ssebench_streams_completed_total", "Streams that ended as they should.", c.completed),
        ("ssebench_streams_interrupted_total", "Streams cut by the run's end, a stage's end or Ctrl-C.", c.interrupted),
        ("ssebench_events_total", "Server-Sent Events received.", c.events),
        ("ssebench_bytes_total", "Response body bytes received.", c.bytes),
        ("ssebench_reconnects_total", "Streams started again by --reconnect.", c.reconnects),
    ];
    for (name, help, value) in counters {
        push_head(&mut out, name, help, "counter");
        let _ = writeln!(out, "{name}{{{run}}} {value}");
    }
    push_head(&mut out, "ssebench_streams_failed_total", "Streams that failed, by failure class.", "counter");
    for (failure, n) in Failure::ALL.iter().zip(c.failures) {
        let _ = writeln!(out, "ssebench_streams_failed_total{{{run},class=\"{}\"}} {n}", failure.name());
    }
    if shape.llm {
        push_head(&mut out, "ssebench_output_tokens_total", "Output (completion) tokens received.", "counter");
        let _ = writeln!(out, "ssebench_output_tokens_total{{{run}}} {}", c.output_tokens);
        push_head(&mut out, "ssebench_input_tokens_total", "Input (prompt) tokens of the completions.", "counter");
        let _ = writeln!(out, "ssebench_input_tokens_total{{{run}}} {}", c.input_tokens);
    }
    let stage = last.map_or(0, |e| e.stage);
    let target = match shape.stage_targets.is_empty() {
        true => shape.target_streams,
        false => shape.stage_targets.get(stage).copied().unwrap_or_default(),
    };
    let gauges: [(&str, &str, u64); 3] = [
        ("ssebench_open_streams", "Streams open at the last interval's end.", last.map_or(0, |e| e.open_streams)),
        ("ssebench_target_streams", "Streams the run (its --stages stage) aims to hold open.", target as u64),
        (
            "ssebench_stage",
            "The --stages stage under way, from 1 (0 without --stages).",
            if shape.stage_targets.is_empty() { 0 } else { stage as u64 + 1 },
        ),
    ];
    for (name, help, value) in gauges {
        push_head(&mut out, name, help, "gauge");
        let _ = writeln!(out, "{name}{{{run}}} {value}");
    }
    let llm_end = LATENCIES.len() + LLM_LATENCIES.len();
    let kept = |i: usize| i < LATENCIES.len() || (i < llm_end && shape.llm) || (i >= llm_end && shape.delivery);
    for (i, ((name, help), h)) in HISTOGRAM_METRICS.iter().zip(totals.histograms()).enumerate() {
        if kept(i) {
            push_histogram(&mut out, name, help, &run, &Buckets::of(h));
        }
    }
    out
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn push_head(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A histogram's `_bucket` series (cumulative, `+Inf` last), `_sum` (seconds) and `_count`.
fn push_histogram(out: &mut String, name: &str, help: &str, run: &str, buckets: &Buckets) {
    push_head(out, name, help, "histogram");
    let mut cumulative = 0;
    for (le, n) in LE_SECONDS.iter().zip(buckets.counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{run},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{run},le=\"+Inf\"}} {}", buckets.count);
    let _ = writeln!(out, "{name}_sum{{{run}}} {}", buckets.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{run}}} {}", buckets.count);
}

/// `BUCKET_BOUNDS_US` as the `le` labels write them, worked out once.
static LE_SECONDS: LazyLock<[String; BUCKET_BOUNDS_US.len()]> = LazyLock::new(|| BUCKET_BOUNDS_US.map(seconds));

/// Whole microseconds as exact decimal seconds (`1600` -> `0.0016`, `104857600` -> `104.8576`), never a float's
/// rounding: `le` values are compared as text by anyone who reads the series.
fn seconds(us: u64) -> String {
    let (whole, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value as the text format writes it: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Recorder;
    use crate::timeline::Collector;

    fn shape(llm: bool, stage_targets: Vec<usize>) -> Shape {
        Shape { run_id: "r1".into(), llm, delivery: false, stage_targets, target_streams: 10 }
    }

    /// The value of the series `series` (name and labels as written) in `text`.
    fn value(text: &str, series: &str) -> f64 {
        let line = text.lines().find(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')));
        line.unwrap_or_else(|| panic!("no {series} in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn bounds_are_exact_decimal_seconds() {
        assert_eq!(BUCKET_BOUNDS_US[0], 100);
        assert_eq!(*BUCKET_BOUNDS_US.last().unwrap(), 104_857_600);
        let texts: Vec<String> = [100, 1_600, 1_000_000, 104_857_600].map(seconds).into();
        assert_eq!(texts, ["0.0001", "0.0016", "1", "104.8576"]);
    }

    #[test]
    fn values_fall_in_the_bucket_of_their_upper_bound() {
        let mut h = Histogram::<u64>::new_with_bounds(1, crate::recorder::HISTOGRAM_MAX, 2).unwrap();
        for v in [1, 100, 101, 150, 400, 90_000, 200_000_000] {
            h.record(v).unwrap();
        }
        let b = Buckets::of(&h);
        assert_eq!(b.count, 7);
        assert_eq!(&b.counts[..3], [2, 2, 1], "<=100 µs, <=200 µs, <=400 µs");
        assert_eq!(b.counts[BUCKET_BOUNDS_US.partition_point(|&x| x < 90_000)], 1, "90 ms in le=0.1024");
        assert_eq!(b.counts[BUCKET_BOUNDS_US.len()], 1, "200 s above every bound");
        assert_eq!(b.counts.iter().sum::<u64>(), 7);
        let exact: u128 = [1u128, 100, 101, 150, 400, 90_000, 200_000_000].iter().sum();
        assert!(b.sum_us.abs_diff(exact) * 100 < exact, "{} against {exact}: within 1%", b.sum_us);
    }

    #[test]
    fn the_delivery_lag_series_comes_with_send_times_only() {
        let with = render(&Shape { delivery: true, ..shape(false, vec![]) }, &Interval::new(), None);
        assert!(with.contains("# TYPE ssebench_delivery_lag_seconds histogram"), "{with}");
        assert!(!with.contains("ssebench_ttft_seconds"), "{with}");
        let without = render(&shape(true, vec![]), &Interval::new(), None);
        assert!(!without.contains("ssebench_delivery_lag_seconds") && without.contains("ssebench_ttft_seconds"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#.to_owned().as_str()), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        let text = render(&Shape { run_id: "q\"\n".into(), ..shape(false, vec![]) }, &Interval::new(), None);
        assert!(text.contains("ssebench_events_total{run=\"q\\\"\\n\"} 0\n"), "{text}");
    }

    /// Every series has its HELP and TYPE, every failure class is there at zero, the buckets only grow to `+Inf`
    /// equal to `_count`, and the LLM series only with `--openai`.
    #[test]
    fn the_exposition_is_well_formed() {
        let mut totals = Interval::new();
        let mut rec = Recorder::new();
        rec.histograms.first_event_us.record(3_000).unwrap();
        rec.histograms.first_event_us.record(50_000).unwrap();
        totals.add_since(&rec, &mut Interval::new());
        let text = render(&shape(false, vec![]), &totals, None);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "no TYPE for {l}");
            assert!(text.contains(&format!("# HELP {family} ")), "no HELP for {l}");
            assert!(l.contains("run=\"r1\""), "{l}");
        }
        for failure in Failure::ALL {
            let series = format!("ssebench_streams_failed_total{{run=\"r1\",class=\"{}\"}}", failure.name());
            assert_eq!(value(&text, &series), 0.0);
        }
        let buckets: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("ssebench_first_event_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(buckets.len(), BUCKET_BOUNDS_US.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative: {buckets:?}");
        assert_eq!(value(&text, "ssebench_first_event_seconds_bucket{run=\"r1\",le=\"0.0032\"}"), 1.0);
        assert_eq!(value(&text, "ssebench_first_event_seconds_bucket{run=\"r1\",le=\"+Inf\"}"), 2.0);
        assert_eq!(value(&text, "ssebench_first_event_seconds_count{run=\"r1\"}"), 2.0);
        let sum = value(&text, "ssebench_first_event_seconds_sum{run=\"r1\"}");
        assert!((sum - 0.053).abs() < 0.001, "{sum}");
        assert!(!text.contains("ttft") && !text.contains("tokens"));
        let llm = render(&shape(true, vec![]), &totals, None);
        for name in ["ssebench_ttft_seconds_count", "ssebench_itl_seconds_count", "ssebench_output_tokens_total"] {
            assert_eq!(value(&llm, &format!("{name}{{run=\"r1\"}}")), 0.0);
        }
        assert_eq!(value(&llm, "ssebench_input_tokens_total{run=\"r1\"}"), 0.0);
    }

    /// The gauges follow the last entry: its open streams, its stage (from 1) and that stage's target.
    #[test]
    fn gauges_follow_the_stage() {
        let mut c = Collector::new(1, false, 2);
        let mut s = Interval::new();
        (s.index, s.end_us, s.stage, s.open_streams) = (0, 1_000, 1, 7);
        c.accept(s);
        let entry = c.timeline.last().copied();
        let text = render(&shape(false, vec![5, 20, 10]), &Interval::new(), entry.as_ref());
        assert_eq!(value(&text, "ssebench_open_streams{run=\"r1\"}"), 7.0);
        assert_eq!(value(&text, "ssebench_stage{run=\"r1\"}"), 2.0);
        assert_eq!(value(&text, "ssebench_target_streams{run=\"r1\"}"), 20.0);
        let before = render(&shape(false, vec![]), &Interval::new(), None);
        assert_eq!(value(&before, "ssebench_stage{run=\"r1\"}"), 0.0);
        assert_eq!(value(&before, "ssebench_target_streams{run=\"r1\"}"), 10.0);
    }

    /// The collector's totals are every emitted interval added up: counters and histograms.
    #[test]
    fn counters_are_the_sum_of_the_intervals() {
        let mut c = Collector::new(2, false, 3).keeping_totals();
        let (mut events, mut failed) = (0, 0);
        for index in 0..3 {
            for core in 0..2 {
                let mut s = Interval::new();
                (s.core, s.index, s.end_us, s.last) = (core, index, (index as u64 + 1) * 1_000, index == 2);
                s.counts.events = 10 * index as u64 + core as u64 + 1;
                s.counts.failures[Failure::Reset.index()] = 1;
                let mut rec = Recorder::new();
                rec.histograms.gap_us.record(1_000 * (index as u64 + 1)).unwrap();
                s.add_since(&rec, &mut Interval::new());
                events += s.counts.events;
                failed += 1;
                c.accept(s);
            }
            let text = render(&shape(false, vec![]), c.totals().unwrap(), c.timeline.last());
            assert_eq!(value(&text, "ssebench_events_total{run=\"r1\"}"), events as f64);
            let reset = "ssebench_streams_failed_total{run=\"r1\",class=\"reset\"}";
            assert_eq!(value(&text, reset), failed as f64);
            assert_eq!(value(&text, "ssebench_gap_seconds_count{run=\"r1\"}"), 2.0 * (index as f64 + 1.0));
        }
        assert_eq!(c.timeline.len(), 3);
    }
}
