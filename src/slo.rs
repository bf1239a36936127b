//! Service-level objectives (`--slo 'first_event.p99<500ms'`) as parsed at start-up: what each measures, how it compares, and its threshold. `report::verdict` judges them. Pure.

use crate::units::parse_duration;

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
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
    /// The busiest share of an interval any generator core spent busy (0..1).
    GeneratorBusy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Histogram {
    Connect,
    Headers,
    FirstEvent,
    Gap,
    Stream,
    MaxGap,
    PrematureEnd,
    /// `https://`: the TLS handshake.
    TlsHandshake,
    /// Response head to first event.
    HeadWait,
    /// `--send-time`: receipt minus send time.
    DeliveryLag,
    /// `--openai`: time to first token, inter-token latency, time per output token.
    Ttft,
    Itl,
    Tpot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// One objective, as the user wrote it and as it is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub text: String,
    pub(crate) metric: Metric,
    pub(crate) op: Op,
    /// In the metric's unit: µs for latencies, a fraction for rates, a plain number otherwise.
    pub(crate) threshold: f64,
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
            Metric::SuccessRate | Metric::StallRate | Metric::DisconnectRate | Metric::GeneratorBusy => {
                parse_rate(value)
            }
            Metric::EventsPerStream(_) | Metric::EventsPerS | Metric::OutputTokensPerS => {
                value.parse::<f64>().map_err(|_| format!("'{value}' is not a number"))
            }
        }
        .map_err(|e| format!("--slo '{text}': {e}"))?;
        Ok(Slo { text: text.trim().to_string(), metric, op, threshold })
    }

    /// The objective measures tokens, so it needs `--openai`.
    pub fn needs_llm(&self) -> bool {
        matches!(
            self.metric,
            Metric::OutputTokensPerS | Metric::Latency(Histogram::Ttft | Histogram::Itl | Histogram::Tpot, _)
        )
    }

    /// The objective measures delivery lag, so it needs `--send-time`.
    pub fn needs_send_time(&self) -> bool {
        matches!(self.metric, Metric::Latency(Histogram::DeliveryLag, _))
    }
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    let scalar = match name {
        "success_rate" => Some(Metric::SuccessRate),
        "stall_rate" => Some(Metric::StallRate),
        "disconnect_rate" => Some(Metric::DisconnectRate),
        "events_per_s" => Some(Metric::EventsPerS),
        "output_tokens_per_s" => Some(Metric::OutputTokensPerS),
        "generator_busy" => Some(Metric::GeneratorBusy),
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
        "head_wait" => Histogram::HeadWait,
        "delivery_lag" => Histogram::DeliveryLag,
        "ttft" => Histogram::Ttft,
        "itl" => Histogram::Itl,
        "tpot" => Histogram::Tpot,
        "events_per_stream" => return Ok(Metric::EventsPerStream(stat)),
        other => {
            return Err(format!(
                "unknown histogram '{other}' (connect, headers, first_event, gap, stream, max_gap, premature_end, tls_handshake, head_wait, delivery_lag, events_per_stream, ttft, itl, tpot)"
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
