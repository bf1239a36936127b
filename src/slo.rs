//! Service-level objectives (`--slo 'first_event.p99<500ms'`): parsed at start-up, judged against the report. Pure.

use serde::Serialize;

use crate::config::parse_duration;
use crate::report::{Figures, Summary};

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// A latency histogram (µs) and one of its statistics.
    Latency(Histogram, Stat),
    /// Events per stream, a count.
    EventsPerStream(Stat),
    /// Streams that did not fail, over streams started (0..1).
    SuccessRate,
    /// Gaps longer than `--stall-threshold`, over all gaps (0..1).
    StallRate,
    /// Streams that failed after their connection was made, over streams started (0..1).
    DisconnectRate,
    /// Events received per second of the run.
    EventsPerS,
    /// `--openai`: output tokens per second of the run.
    OutputTokensPerS,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Histogram {
    Connect,
    Headers,
    FirstEvent,
    Gap,
    Stream,
    MaxGap,
    PrematureEnd,
    /// `https://`: the TLS handshake.
    TlsHandshake,
    /// `--openai`: time to first token, inter-token latency, time per output token.
    Ttft,
    Itl,
    Tpot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// One objective, as the user wrote it and as it is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub text: String,
    metric: Metric,
    op: Op,
    /// In the metric's unit: µs for latencies, a fraction for rates, a plain number otherwise.
    threshold: f64,
}

/// The unit of a measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Microseconds,
    /// 0..1.
    Fraction,
    Number,
}

/// One objective judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub slo: String,
    pub measured: f64,
    pub unit: Unit,
    pub pass: bool,
}

impl Slo {
    pub fn parse(text: &str) -> Result<Slo, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact
            .find(['<', '>'])
            .ok_or_else(|| format!("--slo '{text}': expected METRIC<VALUE, METRIC<=VALUE, > or >="))?;
        let (name, rest) = compact.split_at(at);
        let (op, value) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        let metric = parse_metric(name).map_err(|e| format!("--slo '{text}': {e}"))?;
        let threshold = match metric {
            Metric::Latency(..) => parse_duration(value).map(|d| d.as_secs_f64() * 1e6),
            Metric::SuccessRate | Metric::StallRate | Metric::DisconnectRate => parse_rate(value),
            Metric::EventsPerStream(_) | Metric::EventsPerS | Metric::OutputTokensPerS => {
                value.parse::<f64>().map_err(|_| format!("'{value}' is not a number"))
            }
        }
        .map_err(|e| format!("--slo '{text}': {e}"))?;
        Ok(Slo { text: text.trim().to_string(), metric, op, threshold })
    }

    /// Judges the objective against a finished run, or one stage of it.
    pub fn judge(&self, report: &Figures) -> Verdict {
        let measured = measure(self.metric, report);
        let pass = match self.op {
            Op::Lt => measured < self.threshold,
            Op::Le => measured <= self.threshold,
            Op::Gt => measured > self.threshold,
            Op::Ge => measured >= self.threshold,
        };
        let unit = match self.metric {
            Metric::Latency(..) => Unit::Microseconds,
            Metric::SuccessRate | Metric::StallRate | Metric::DisconnectRate => Unit::Fraction,
            Metric::EventsPerStream(_) | Metric::EventsPerS | Metric::OutputTokensPerS => Unit::Number,
        };
        Verdict { slo: self.text.clone(), measured, unit, pass }
    }

    /// The objective measures tokens, so it needs `--openai`.
    pub fn needs_llm(&self) -> bool {
        matches!(
            self.metric,
            Metric::OutputTokensPerS | Metric::Latency(Histogram::Ttft | Histogram::Itl | Histogram::Tpot, _)
        )
    }
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    let scalar = match name {
        "success_rate" => Some(Metric::SuccessRate),
        "stall_rate" => Some(Metric::StallRate),
        "disconnect_rate" => Some(Metric::DisconnectRate),
        "events_per_s" => Some(Metric::EventsPerS),
        "output_tokens_per_s" => Some(Metric::OutputTokensPerS),
        _ => None,
    };
    if let Some(metric) = scalar {
        return Ok(metric);
    }
    let (histogram, stat) = name.split_once('.').ok_or_else(|| {
        format!("unknown metric '{name}' (a histogram with a statistic like first_event.p99, or success_rate, stall_rate, disconnect_rate, events_per_s, output_tokens_per_s)")
    })?;
    let stat = match stat {
        "min" => Stat::Min,
        "mean" => Stat::Mean,
        "p50" => Stat::P50,
        "p90" => Stat::P90,
        "p99" => Stat::P99,
        "p999" => Stat::P999,
        "max" => Stat::Max,
        other => return Err(format!("unknown statistic '{other}' (min, mean, p50, p90, p99, p999, max)")),
    };
    let histogram = match histogram {
        "connect" => Histogram::Connect,
        "headers" => Histogram::Headers,
        "first_event" => Histogram::FirstEvent,
        "gap" => Histogram::Gap,
        "stream" => Histogram::Stream,
        "max_gap" => Histogram::MaxGap,
        "premature_end" => Histogram::PrematureEnd,
        "tls_handshake" => Histogram::TlsHandshake,
        "ttft" => Histogram::Ttft,
        "itl" => Histogram::Itl,
        "tpot" => Histogram::Tpot,
        "events_per_stream" => return Ok(Metric::EventsPerStream(stat)),
        other => {
            return Err(format!(
                "unknown histogram '{other}' (connect, headers, first_event, gap, stream, max_gap, premature_end, tls_handshake, events_per_stream, ttft, itl, tpot)"
            ));
        }
    };
    Ok(Metric::Latency(histogram, stat))
}

/// `0.99` or `99%`.
fn parse_rate(value: &str) -> Result<f64, String> {
    let rate = match value.strip_suffix('%') {
        Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
        None => value.parse::<f64>(),
    }
    .map_err(|_| format!("'{value}' is not a rate (0.99 or 99%)"))?;
    if (0.0..=1.0).contains(&rate) { Ok(rate) } else { Err(format!("'{value}' is not between 0 and 1")) }
}

fn stat_of(summary: &Summary, stat: Stat) -> f64 {
    match stat {
        Stat::Min => summary.min as f64,
        Stat::Mean => summary.mean,
        Stat::P50 => summary.p50 as f64,
        Stat::P90 => summary.p90 as f64,
        Stat::P99 => summary.p99 as f64,
        Stat::P999 => summary.p999 as f64,
        Stat::Max => summary.max as f64,
    }
}

fn measure(metric: Metric, r: &Figures) -> f64 {
    let l = &r.latency_us;
    let ratio = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let llm = r.llm.as_ref();
    // Without --openai there are no token figures (validation refuses such objectives on a run).
    let empty = Summary { count: 0, min: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    match metric {
        Metric::Latency(h, stat) => {
            let summary = match h {
                Histogram::Ttft => llm.map_or(&empty, |l| &l.ttft_us),
                Histogram::Itl => llm.map_or(&empty, |l| &l.itl_us),
                Histogram::Tpot => llm.map_or(&empty, |l| &l.tpot_us),
                Histogram::Connect => &l.connect,
                Histogram::Headers => &l.headers,
                Histogram::FirstEvent => &l.first_event,
                Histogram::Gap => &l.gap,
                Histogram::Stream => &l.stream,
                Histogram::MaxGap => &l.max_gap,
                Histogram::PrematureEnd => &l.premature_end,
                Histogram::TlsHandshake => &l.tls_handshake,
            };
            stat_of(summary, stat)
        }
        Metric::EventsPerStream(stat) => stat_of(&r.events_per_stream, stat),
        Metric::SuccessRate => r.streams.success_rate,
        Metric::StallRate => ratio(r.events.stalls, l.gap.count),
        Metric::DisconnectRate => {
            let connect_failures: u64 = ["connect_refused", "connect_timeout", "ports_exhausted", "connect_error"]
                .iter()
                .map(|class| r.streams.failures.get(*class).copied().unwrap_or(0))
                .sum();
            ratio(r.streams.failed.saturating_sub(connect_failures), r.streams.started + r.streams.open_at_start)
        }
        Metric::EventsPerS => r.events.per_second,
        Metric::OutputTokensPerS => llm.map_or(0.0, |l| l.output_tokens_per_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        let slo = Slo::parse("first_event.p99 < 500ms").unwrap();
        assert_eq!(
            (slo.metric, slo.op, slo.threshold),
            (Metric::Latency(Histogram::FirstEvent, Stat::P99), Op::Lt, 500_000.0)
        );
        assert_eq!(Slo::parse("success_rate>=99.5%").unwrap().threshold, 0.995);
        assert_eq!(Slo::parse("events_per_s>1000").unwrap().op, Op::Gt);
        assert_eq!(Slo::parse("gap.max<=2s").unwrap().threshold, 2e6);
        assert_eq!(Slo::parse("events_per_stream.min>=10").unwrap().metric, Metric::EventsPerStream(Stat::Min));
        let ttft = Slo::parse("ttft.p99<2s").unwrap();
        assert_eq!(
            (ttft.metric, ttft.threshold, ttft.needs_llm()),
            (Metric::Latency(Histogram::Ttft, Stat::P99), 2e6, true)
        );
        assert!(Slo::parse("output_tokens_per_s>=500").unwrap().needs_llm());
        assert!(!Slo::parse("first_event.p99<1s").unwrap().needs_llm());
        for bad in ["first_event.p98<1s", "latency<1s", "success_rate<2", "first_event.p99", "gap.p50<fast"] {
            let err = Slo::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
