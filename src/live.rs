//! The live view's text, sans IO: one merged interval (`timeline::Entry`) and what the run looks like as a whole
//! (`Shape`: its length, its `--stages` targets, LLM or not) in, one line out; and `Cadence`, when a log (stderr not
//! a terminal) gets a line. No clock and no terminal here: `commands` writes the lines, the engine hands them over
//! once per interval, as the collector completes each.

use std::fmt::Write;
use std::time::Duration;

use crate::recorder::Failure;
use crate::timeline::{Entry, Quantiles};

/// How often a log (stderr not a terminal) gets a line: the first interval's, then one every this long.
pub const PLAIN_PERIOD: Duration = Duration::from_secs(10);

/// Failure classes a line names, the most frequent of the interval first.
const TOP_FAILURES: usize = 3;

/// What the view knows of the run, fixed at its start (from the engine's plan, worked out once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// From the start to the deadline; `None` runs until `-n` streams are done.
    pub length: Option<Duration>,
    /// `--stages`: each stage's target of open streams, in order; empty without stages.
    pub stage_targets: Vec<usize>,
    /// `--openai`: the latency shown is TTFT rather than the first event.
    pub llm: bool,
}

impl Shape {
    /// One line (no newline) for `entry`, the interval that began `start_us` after the run's start: where the run
    /// is, then the interval's rates, failures and latency.
    pub fn line(&self, entry: &Entry, start_us: u64) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(line, "[{}", seconds(entry.end_us));
        if let Some(length) = self.length {
            let _ = write!(line, "/{}", seconds(length.as_micros() as u64));
        }
        line.push(']');
        if let Some(target) = self.stage_targets.get(entry.stage) {
            let _ = write!(line, " stage {}/{} target {target}", entry.stage + 1, self.stage_targets.len());
        }
        let c = &entry.counts;
        let span_us = entry.end_us.saturating_sub(start_us);
        let _ = write!(
            line,
            " | open {} | new {}/s | {} ev/s | {:.2} MB/s",
            entry.open_streams,
            per_s(c.started, span_us),
            per_s(c.events, span_us),
            per_s(c.bytes, span_us) as f64 / 1e6,
        );
        let _ = write!(line, " | failed {}", c.failed);
        push_top_failures(&mut line, &c.failures);
        let (name, key) = if self.llm { ("ttft", "ttft_us") } else { ("first event", "first_event_us") };
        let _ = write!(line, " | {name} ");
        match entry.latency(key) {
            Some(Quantiles { p50, p99, .. }) => {
                let _ = write!(line, "p50 {} p99 {}", micros(p50), micros(p99));
            }
            None => line.push('-'),
        }
        line
    }
}

/// ` (reset 3, connect_refused 1)`: up to `TOP_FAILURES` classes, the most frequent first (ties in report order).
fn push_top_failures(line: &mut String, failures: &[u64; Failure::ALL.len()]) {
    let mut top: [(u64, usize); TOP_FAILURES] = [(0, 0); TOP_FAILURES];
    for (i, &n) in failures.iter().enumerate() {
        // Insertion into a sorted array of three: strictly greater, so the earlier class wins a tie.
        if let Some(at) = top.iter().position(|&(m, _)| n > m) {
            top[at..].rotate_right(1);
            top[at] = (n, i);
        }
    }
    let mut named = top.iter().filter(|(n, _)| *n > 0).peekable();
    if named.peek().is_none() {
        return;
    }
    line.push_str(" (");
    for (k, (n, i)) in named.enumerate() {
        let sep = if k == 0 { "" } else { ", " };
        let _ = write!(line, "{sep}{} {n}", Failure::ALL[*i].name());
    }
    line.push(')');
}

/// `count` over `span_us`, per second; 0 over an empty span.
fn per_s(count: u64, span_us: u64) -> u64 {
    match span_us {
        0 => 0,
        span => (count as u128 * 1_000_000 / span as u128) as u64,
    }
}

/// `12.3s`: tenths of a second, rounded down.
fn seconds(us: u64) -> String {
    format!("{}.{}s", us / 1_000_000, us % 1_000_000 / 100_000)
}

/// `850us`, `12.3ms`, `1.25s`.
fn micros(us: u64) -> String {
    crate::units::format_micros(us as f64, 1)
}

/// When a log gets a line: the first interval's, then the first interval ending `PLAIN_PERIOD` or more after the
/// last line's. A terminal redraws every interval and needs none of this.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cadence {
    next_us: Option<u64>,
}

impl Cadence {
    /// Whether the interval ending `end_us` after the start gets a line (and if so, the next is due a period later).
    pub fn due(&mut self, end_us: u64) -> bool {
        if self.next_us.is_some_and(|next| end_us < next) {
            return false;
        }
        self.next_us = Some(end_us + PLAIN_PERIOD.as_micros() as u64);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{LlmRecorder, Recorder, StreamEnd};
    use crate::timeline::Interval;

    /// An entry for the interval ending at `end_us`, with what `fill` recorded (from an empty recorder).
    fn entry(end_us: u64, stage: usize, open: u64, llm: bool, fill: impl FnOnce(&mut Recorder)) -> Entry {
        let mut rec = Recorder::new();
        if llm {
            rec.llm = Some(Box::new(LlmRecorder::new(1, 0)));
        }
        fill(&mut rec);
        let mut interval = Interval::new();
        interval.add_since(&rec, &mut Interval::new());
        (interval.end_us, interval.stage, interval.open_streams) = (end_us, stage, open);
        interval.entry(llm)
    }

    fn shape(length_s: Option<u64>, stage_targets: &[usize], llm: bool) -> Shape {
        Shape { length: length_s.map(Duration::from_secs), stage_targets: stage_targets.to_vec(), llm }
    }

    #[test]
    fn a_plain_interval_shows_rates_over_its_own_span() {
        let e = entry(3_000_000, 0, 40, false, |rec| {
            for _ in 0..10 {
                rec.stream_opened();
            }
            (rec.events, rec.bytes) = (2_000, 3_000_000);
            rec.histograms.first_event_us.record(12_000).unwrap();
            rec.histograms.first_event_us.record(12_000).unwrap();
        });
        // Half a second long: every rate doubles.
        assert_eq!(
            shape(Some(10), &[], false).line(&e, 2_500_000),
            "[3.0s/10.0s] | open 40 | new 20/s | 4000 ev/s | 6.00 MB/s | failed 0 | first event p50 12.0ms p99 12.0ms"
        );
    }

    #[test]
    fn stages_show_the_current_one_and_its_target() {
        let e = entry(61_200_000, 1, 4_980, false, |_| {});
        let line = shape(Some(90), &[1_000, 5_000, 0], false).line(&e, 60_200_000);
        assert!(line.starts_with("[61.2s/90.0s] stage 2/3 target 5000 | open 4980 |"), "{line}");
    }

    #[test]
    fn a_run_without_a_deadline_shows_only_the_elapsed_time() {
        let line = shape(None, &[], false).line(&entry(1_000_000, 0, 0, false, |_| {}), 0);
        assert!(line.starts_with("[1.0s] | open 0 |"), "{line}");
    }

    #[test]
    fn llm_runs_show_ttft() {
        let e = entry(1_000_000, 0, 5, true, |rec| {
            rec.histograms.first_event_us.record(50).unwrap();
            let llm = rec.llm.as_mut().unwrap();
            llm.ttft_us.record(250_000).unwrap();
            llm.ttft_us.record(1_500_000).unwrap();
        });
        let line = shape(Some(5), &[], true).line(&e, 0);
        // An interval's histograms keep two significant digits: a quantile is its bucket's highest value.
        assert!(line.ends_with(" | ttft p50 250.9ms p99 1.51s"), "{line}");
        assert!(!line.contains("first event"), "{line}");
    }

    #[test]
    fn failures_name_the_three_most_frequent_classes() {
        let e = entry(2_000_000, 0, 0, false, |rec| {
            let ends = [(Failure::Reset, 2), (Failure::ConnectRefused, 5), (Failure::Io, 1), (Failure::IdleTimeout, 2)];
            for (failure, n) in ends {
                for _ in 0..n {
                    rec.stream_opened();
                    rec.stream_closed(StreamEnd::Failed(failure), 0, 0);
                }
            }
        });
        let line = shape(Some(5), &[], false).line(&e, 1_000_000);
        // A tie (reset, idle_timeout) goes to the class the report lists first; the rarest is left out.
        assert!(line.contains(" | failed 10 (connect_refused 5, reset 2, idle_timeout 2) | "), "{line}");
    }

    #[test]
    fn an_idle_interval_shows_zero_rates_and_no_latency() {
        let e = entry(4_000_000, 0, 0, false, |_| {});
        assert_eq!(
            shape(Some(4), &[], false).line(&e, 3_000_000),
            "[4.0s/4.0s] | open 0 | new 0/s | 0 ev/s | 0.00 MB/s | failed 0 | first event -"
        );
        // An empty span (never expected, but never a division by zero either).
        assert!(shape(Some(4), &[], false).line(&e, 4_000_000).contains("new 0/s | 0 ev/s"));
    }

    #[test]
    fn latencies_print_in_fitting_units() {
        assert_eq!(
            [micros(0), micros(999), micros(1_000), micros(999_949), micros(2_345_678)],
            ["0us", "999us", "1.0ms", "999.9ms", "2.35s"]
        );
        assert_eq!([seconds(0), seconds(99_999), seconds(12_345_678)], ["0.0s", "0.0s", "12.3s"]);
    }

    #[test]
    fn a_log_gets_the_first_interval_then_one_line_per_period() {
        let mut cadence = Cadence::default();
        let ends_s = [1, 2, 10, 11, 12, 21, 30, 31];
        let shown: Vec<u64> = ends_s.into_iter().filter(|&s| cadence.due(s * 1_000_000)).collect();
        assert_eq!(shown, [1, 11, 21, 31]);
    }
}
