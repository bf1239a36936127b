//! `--slo` objectives judged against a finished run's figures, or one stage's.

use serde::{Deserialize, Serialize};

use crate::report::{Figures, Summary, ratio};
use crate::slo::{Histogram, Metric, Op, Slo, Stat};

/// The unit of a measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Microseconds,
    /// 0..1.
    Fraction,
    Number,
}

/// One objective judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub slo: String,
    pub measured: f64,
    pub unit: Unit,
    pub pass: bool,
}

/// Judges the objective against a finished run, or one stage of it.
pub fn judge(slo: &Slo, report: &Figures) -> Verdict {
    let measured = measure(slo.metric, report);
    let pass = match slo.op {
        Op::Lt => measured < slo.threshold,
        Op::Le => measured <= slo.threshold,
        Op::Gt => measured > slo.threshold,
        Op::Ge => measured >= slo.threshold,
    };
    let unit = match slo.metric {
        Metric::Latency(..) => Unit::Microseconds,
        Metric::SuccessRate | Metric::StallRate | Metric::DisconnectRate | Metric::GeneratorBusy => Unit::Fraction,
        Metric::EventsPerStream(_) | Metric::EventsPerS | Metric::OutputTokensPerS => Unit::Number,
    };
    // NaN (nothing measured) fails every comparison above; the report shows it as 0.
    let measured = if measured.is_nan() { 0.0 } else { measured };
    Verdict { slo: slo.text.clone(), measured, unit, pass }
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
    let llm = r.llm.as_ref();
    // Without --openai there are no token figures (validation refuses such objectives on a run).
    let empty = Summary::default();
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
                Histogram::HeadWait => &l.head_wait,
                // No lag measured (every send time missing): no value, so no objective on it passes.
                Histogram::DeliveryLag if l.delivery_lag.count == 0 => return f64::NAN,
                Histogram::DeliveryLag => &l.delivery_lag,
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
        // Not measured (a report from before it was): no value, so no objective on it passes.
        Metric::GeneratorBusy => r.generator.as_ref().map_or(f64::NAN, |g| g.busy_max),
        Metric::OutputTokensPerS => llm.map_or(0.0, |l| l.output_tokens_per_s),
    }
}
