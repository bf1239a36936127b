//! The run's report: per-core recorders merged into one summary, rendered as text (stdout) or JSON (`--json`).

pub mod delivery;
pub mod generator;
pub mod hdr_log;
pub mod histograms;
pub mod html;
pub mod merge;
pub mod merge_timeline;
mod text;
pub mod timeline;
pub mod verdict;
pub mod warnings;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::{RunOutcome, StageOutcome};
use crate::recorder::{self, Failure, LATE_START_US, LlmRecorder, Recorder};
use crate::slo::Slo;

pub use self::verdict::Verdict;

pub use text::render as render_text;

/// Count, extremes, mean and percentiles of one histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Engine {
    pub driver: String,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Streams {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Still open when the run stopped (or, with `--stages`, when a step down closed them):
    /// neither success nor failure.
    pub interrupted: u64,
    /// Every failure class (zero included) plus `http_<code>` for each status seen.
    pub failures: BTreeMap<String, u64>,
    pub peak_concurrent: u64,
    /// `--reconnect`: streams opened as reconnects.
    pub reconnects: u64,
    /// `--reconnect`: virtual users the server told to stop reconnecting (204 No Content); each made no more requests
    /// in the run.
    pub users_stopped_by_204: u64,
    /// Redirects followed (hops); a stream may follow several.
    pub redirects: u64,
    /// Kept-alive connections found with bytes or an EOF waiting when their user was about to reuse them: closed,
    /// and the stream sent on a new connection.
    pub stale_keepalive: u64,
    /// `--streams-log`: ended streams left out of the log (a core's buffer was full, or the writer behind).
    #[serde(default)]
    pub streams_log_dropped: u64,
    /// Streams that did not fail, over the streams seen: started, plus (for a stage) those
    /// already open when it began. 1 when there were none.
    pub success_rate: f64,
    /// `--stages`: streams already open when the stage began (0 for the whole run).
    pub open_at_start: u64,
    /// `--arrival-rate`: what happened to the scheduled arrivals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<Arrivals>,
    /// Streams whose body arrived compressed, by coding (decoded, or failed as `bad_encoding`).
    pub compressed: Compressed,
}

/// Streams whose body arrived compressed, by coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compressed {
    pub gzip: u64,
    pub deflate: u64,
    pub br: u64,
}

impl Compressed {
    pub fn total(&self) -> u64 {
        self.gzip + self.deflate + self.br
    }
}

/// The open model's arrivals: every scheduled one either started or was dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Arrivals {
    pub scheduled: u64,
    pub started: u64,
    /// Found `--max-streams` streams open, so never started.
    pub dropped: u64,
    /// Started more than `late_threshold_us` after their schedule (the generator fell behind).
    pub late: u64,
    pub late_threshold_us: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// `--verify-seq`: events whose own id was not a decimal number (or held NUL), which it cannot check.
    pub ids_not_numeric: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// `--arrival-rate`: scheduled start to actual start of each started stream.
    pub start_lag: Summary,
    /// `https://`: TCP connect to the end of the TLS handshake, full and resumed handshakes alike.
    pub tls_handshake: Summary,
    /// Response head to first event, per stream: the first event held back behind the head.
    #[serde(default)]
    pub head_wait: Summary,
    /// `--send-time`: each event's receipt minus its send time.
    #[serde(default)]
    pub delivery_lag: Summary,
}

/// One report of a merge, as the merged report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::config::ShardOf>,
    pub host: String,
    pub started: u64,
    pub failed: u64,
    pub peak_concurrent: u64,
    pub events: u64,
    /// Its generator was saturated (`None`: not measured).
    pub saturated: Option<bool>,
    /// `--start-at`: how late it reached the barrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_late_us: Option<u64>,
}

impl Part {
    pub fn of(r: &Report) -> Part {
        let s = &r.figures.streams;
        Part {
            shard: r.shard,
            host: r.host.clone(),
            started: s.started,
            failed: s.failed,
            peak_concurrent: s.peak_concurrent,
            events: r.figures.events.received,
            saturated: r.figures.generator.as_ref().map(|g| g.saturated),
            start_late_us: r.start_at.as_ref().map(|s| s.late_us),
        }
    }
}

/// `--start-at`: when the run was to start, and how late this process was (0: it waited for the time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartAt {
    pub unix_us: u64,
    pub rfc3339: String,
    pub late_us: u64,
    pub clock: String,
}

/// `https://`: the handshakes that completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsHandshakes {
    pub full: u64,
    /// Resumed a session the user kept from an earlier connection (`--tls-resume on`).
    pub resumed: u64,
}

/// What a stretch of the run measured: the whole run, or one stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    pub streams: Streams,
    pub events: Events,
    pub latency_us: Latencies,
    pub events_per_stream: Summary,
    /// `--openai`: token timings and counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmReport>,
    /// `https://`: absent when no TLS handshake completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_handshakes: Option<TlsHandshakes>,
    /// How the events came through: direct, coalesced, buffered (or unknown), with the evidence.
    #[serde(default)]
    pub delivery: delivery::Delivery,
    /// Whether the generator kept up; absent from reports written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<generator::Generator>,
    /// Every non-empty histogram behind these figures, serialized (`report::histograms`), so that reports merge
    /// exactly. Absent in reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<BTreeMap<String, String>>,
}

/// `--openai`: what the streams said in tokens. The README defines every figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmReport {
    /// Request to the first chunk with answer text (a role-only chunk is no token).
    pub ttft_us: Summary,
    /// Request to the first chunk with reasoning text.
    pub first_reasoning_us: Summary,
    /// Every gap between two output chunks (answer or reasoning), pooled over streams.
    pub itl_us: Summary,
    /// Per stream: (last output chunk - first output chunk) / (output tokens - 1).
    pub tpot_us: Summary,
    /// Per stream: first output chunk to last.
    pub generation_us: Summary,
    /// Per completed stream: output tokens over the stream's time, request to end.
    pub output_tokens_per_s_per_stream: Summary,
    /// Per stream: output tokens / output chunks (above 1: chunks carry several tokens).
    pub tokens_per_chunk: ScaledSummary,
    pub output_tokens: u64,
    /// Per completed stream: its output tokens. None in reports written before it existed (and in a merge of one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_stream: Option<Summary>,
    /// The streams and their output tokens apart by how they ended (completed, cut by the run's end, failed):
    /// `output_tokens` is their sum. None in reports written before it existed (and in a merge of one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_end: Option<TokensByEnd>,
    /// Some streams had no `usage`: their output tokens are their output chunks.
    pub output_tokens_estimated: bool,
    pub input_tokens: u64,
    pub reasoning_tokens: u64,
    pub output_tokens_per_s: f64,
    pub input_tokens_per_s: f64,
    pub streams_with_usage: u64,
    pub streams_estimated: u64,
    /// Streams whose `usage` held a count that is no token count: read as streams without usage.
    pub usage_unreadable: u64,
    pub output_chunks: u64,
    pub role_only_chunks: u64,
    /// Payloads that were not JSON (nor `[DONE]`).
    pub unparsed_chunks: u64,
    /// Completed streams that never sent `[DONE]`.
    pub missing_done: u64,
    pub finish_reasons: FinishReasons,
    /// `--scenario`: figures per turn number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<TurnReport>,
    /// `--scenario`: each HTTP step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
}

/// Streams of an `--openai` run and their output tokens, by how the streams ended. Only completed streams say how
/// long the model's answers are: a stream cut by the end of `-d` counts the chunks it got so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TokensByEnd {
    pub completed_streams: u64,
    pub completed_output_tokens: u64,
    /// Output tokens per completed stream.
    pub completed_output_tokens_mean: f64,
    /// Still streaming when the run ended.
    pub cut_streams: u64,
    pub cut_output_tokens: u64,
    /// Failed after the request started.
    pub failed_streams: u64,
    pub failed_output_tokens: u64,
}

impl TokensByEnd {
    /// The counts back, for summing reports (the mean is worked out again from the sums).
    fn counts(&self) -> recorder::TokensByEnd {
        recorder::TokensByEnd {
            completed_streams: self.completed_streams,
            completed_output_tokens: self.completed_output_tokens,
            cut_streams: self.cut_streams,
            cut_output_tokens: self.cut_output_tokens,
            failed_streams: self.failed_streams,
            failed_output_tokens: self.failed_output_tokens,
        }
    }

    fn of(t: &recorder::TokensByEnd) -> TokensByEnd {
        TokensByEnd {
            completed_streams: t.completed_streams,
            completed_output_tokens: t.completed_output_tokens,
            completed_output_tokens_mean: ratio(t.completed_output_tokens, t.completed_streams),
            cut_streams: t.cut_streams,
            cut_output_tokens: t.cut_output_tokens,
            failed_streams: t.failed_streams,
            failed_output_tokens: t.failed_output_tokens,
        }
    }
}

/// `part / whole`, 0 when there is no whole: a mean over no streams, a share of nothing.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishReasons {
    pub stop: u64,
    pub length: u64,
    pub other: u64,
}

/// A [`Summary`] of a histogram recorded in hundredths, read back as decimals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaledSummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl ScaledSummary {
    fn of_hundredths(h: &Histogram<u64>) -> ScaledSummary {
        let s = Summary::of(h);
        let x = |v: u64| v as f64 / 100.0;
        ScaledSummary {
            count: s.count,
            min: x(s.min),
            mean: s.mean / 100.0,
            p50: x(s.p50),
            p90: x(s.p90),
            p99: x(s.p99),
            max: x(s.max),
        }
    }
}

/// One turn number of a `--scenario` conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnReport {
    /// 1-based.
    pub turn: usize,
    pub streams: u64,
    pub failed: u64,
    /// Completed streams of this turn: the token means are theirs. Absent in reports written before it existed
    /// (their means were over every stream of the turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    pub ttft_us: Summary,
    pub itl_us: Summary,
    /// Mean tokens per completed stream of this turn (input grows with the conversation).
    pub input_tokens_mean: f64,
    pub output_tokens_mean: f64,
}

/// One HTTP step of a `--scenario`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    pub latency_us: Summary,
}

impl LlmReport {
    fn of(llm: &LlmRecorder, duration_s: f64, step_names: &[String]) -> LlmReport {
        let per_s = |n: u64| rate(n, duration_s);
        LlmReport {
            ttft_us: Summary::of(&llm.ttft_us),
            first_reasoning_us: Summary::of(&llm.first_reasoning_us),
            itl_us: Summary::of(&llm.itl_us),
            tpot_us: Summary::of(&llm.tpot_us),
            generation_us: Summary::of(&llm.generation_us),
            output_tokens_per_s_per_stream: Summary::of(&llm.output_tokens_per_s),
            tokens_per_chunk: ScaledSummary::of_hundredths(&llm.tokens_per_chunk_x100),
            output_tokens: llm.output_tokens,
            output_tokens_per_stream: Some(Summary::of(&llm.output_tokens_per_stream)),
            by_end: Some(TokensByEnd::of(&llm.ended)),
            output_tokens_estimated: llm.completed_without_usage > 0,
            input_tokens: llm.input_tokens,
            reasoning_tokens: llm.reasoning_tokens,
            output_tokens_per_s: per_s(llm.output_tokens),
            input_tokens_per_s: per_s(llm.input_tokens),
            streams_with_usage: llm.usage_streams,
            streams_estimated: llm.estimated_streams,
            usage_unreadable: llm.usage_unreadable,
            output_chunks: llm.output_chunks,
            role_only_chunks: llm.role_chunks,
            unparsed_chunks: llm.unparsed_chunks,
            missing_done: llm.missing_done,
            finish_reasons: FinishReasons { stop: llm.finish_stop, length: llm.finish_length, other: llm.finish_other },
            turns: llm
                .turns
                .iter()
                .enumerate()
                .map(|(i, t)| TurnReport {
                    turn: i + 1,
                    streams: t.streams,
                    failed: t.failed,
                    completed: Some(t.completed),
                    ttft_us: Summary::of(&t.ttft_us),
                    itl_us: Summary::of(&t.itl_us),
                    input_tokens_mean: ratio(t.input_tokens, t.completed),
                    output_tokens_mean: ratio(t.output_tokens, t.completed),
                })
                .collect(),
            steps: llm
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepReport {
                    name: step_names.get(i).cloned().unwrap_or_else(|| format!("http{}", i + 1)),
                    ok: s.ok,
                    failed: s.failed,
                    latency_us: Summary::of(&s.latency_us),
                })
                .collect(),
        }
    }
}

/// `n` per second over `seconds`; 0 over no time. Every rate of a report, run or merged, is one of these.
pub(crate) fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { n as f64 / seconds } else { 0.0 }
}

/// Streams that did not fail, over the streams `seen` (started, plus those already open when a stage began); 1 when
/// there were none.
pub(crate) fn success_rate(seen: u64, failed: u64) -> f64 {
    if seen == 0 { 1.0 } else { (seen - failed.min(seen)) as f64 / seen as f64 }
}

impl Figures {
    /// `rec`'s figures over `duration_s` seconds. `open_at_start`: streams already open when
    /// this stretch began (a stage's; 0 for the run). `open_model`: report the arrivals.
    /// `step_names`: the `--scenario` HTTP steps, in order.
    pub fn of(rec: &Recorder, duration_s: f64, open_at_start: u64, open_model: bool, step_names: &[String]) -> Figures {
        let h = &rec.histograms;
        let per_s = |n: u64| rate(n, duration_s);
        let mut failures = BTreeMap::new();
        for failure in Failure::ALL {
            if !matches!(failure, Failure::HttpStatus(_)) {
                failures.insert(failure.name().to_string(), rec.failures_of(failure));
            }
        }
        for (code, count) in rec.status_failures() {
            failures.insert(format!("http_{code}"), count);
        }
        let seen = rec.streams_started + open_at_start;
        let success_rate = success_rate(seen, rec.streams_failed);
        let stream_time_s = rec.stream_time_us as f64 / 1e6;
        // Worked out first: the delivery verdict reads these summaries too (each walks a whole histogram).
        let latency_us = Latencies {
            connect: Summary::of(&h.connect_us),
            headers: Summary::of(&h.headers_us),
            first_event: Summary::of(&h.first_event_us),
            gap: Summary::of(&h.gap_us),
            stream: Summary::of(&h.stream_us),
            max_gap: Summary::of(&h.max_gap_us),
            premature_end: Summary::of(&h.premature_end_us),
            reconnect_delay: Summary::of(&h.reconnect_delay_us),
            start_lag: Summary::of(&h.start_lag_us),
            tls_handshake: Summary::of(&h.tls_handshake_us),
            head_wait: Summary::of(&h.head_wait_us),
            delivery_lag: Summary::of(&h.delivery_lag_us),
        };
        let generator = generator::Generator::of(generator::Load {
            busy_max_ppm: rec.busy_max_ppm,
            loop_lag_max_us: rec.loop_lag_max_us,
            saturated_intervals: rec.saturated_intervals,
            contended_intervals: rec.contended_intervals,
            late_starts: if open_model { rec.late_starts } else { 0 },
            started: rec.streams_started,
        });
        let delivery = delivery::Delivery::judge(delivery::Seen {
            events: rec.events,
            reads_with_events: rec.reads_with_events,
            events_in_shared_reads: rec.events_in_shared_reads,
            send_time: rec.delivery.as_deref().map(|d| d.send_time.text.as_str()),
            lag: &latency_us.delivery_lag,
            spread: &Summary::of(&h.read_spread_us),
            events_without_send_time: rec.send_time_missing,
            negative_lag_events: rec.negative_lag,
            compressed_streams: rec.compressed.gzip + rec.compressed.deflate + rec.compressed.br,
            cut_idle: &h.cut_idle_us,
            cut_flowing: &h.cut_flowing_us,
            generator_saturated: generator.saturated,
            head_wait: &latency_us.head_wait,
            first_event: &latency_us.first_event,
            stream: &latency_us.stream,
            reads_held_1s: h.read_spread_us.count_between(delivery::BUFFERED_FROM_US, u64::MAX),
            events_timed_in_whole_seconds: rec.send_time_whole_seconds,
        });
        Figures {
            streams: Streams {
                started: rec.streams_started,
                completed: rec.streams_completed,
                failed: rec.streams_failed,
                interrupted: rec.streams_interrupted,
                failures,
                peak_concurrent: rec.peak_active,
                reconnects: rec.reconnects,
                users_stopped_by_204: rec.users_stopped_by_204,
                redirects: rec.redirects,
                stale_keepalive: rec.stale_keepalive,
                streams_log_dropped: rec.streams_log_dropped,
                success_rate,
                open_at_start,
                arrivals: open_model.then_some(Arrivals {
                    scheduled: rec.arrivals,
                    started: rec.arrivals - rec.dropped_starts,
                    dropped: rec.dropped_starts,
                    late: rec.late_starts,
                    late_threshold_us: LATE_START_US,
                }),
                compressed: Compressed {
                    gzip: rec.compressed.gzip,
                    deflate: rec.compressed.deflate,
                    br: rec.compressed.br,
                },
            },
            events: Events {
                received: rec.events,
                bytes: rec.bytes,
                per_second: per_s(rec.events),
                bytes_per_second: per_s(rec.bytes),
                per_stream_per_second: rate(rec.events, stream_time_s),
                stalls: rec.stalls,
                lost: rec.lost_events,
                duplicates: rec.duplicate_events,
                ids_not_numeric: rec.ids_not_numeric,
            },
            latency_us,
            delivery,
            // Not measured in a run or stage shorter than one --report-interval: none rather than a false "kept up".
            generator: (rec.load_intervals > 0).then_some(generator),
            events_per_stream: Summary::of(&h.events_per_stream),
            llm: rec.llm.as_deref().map(|llm| LlmReport::of(llm, duration_s, step_names)),
            tls_handshakes: (rec.tls_full_handshakes + rec.tls_resumed_handshakes > 0)
                .then_some(TlsHandshakes { full: rec.tls_full_handshakes, resumed: rec.tls_resumed_handshakes }),
            histograms: Some(histograms::encode_all(rec)),
        }
    }
}

/// One `--stages` step, measured alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageReport {
    /// 1-based, as the user counts them.
    pub stage: usize,
    pub target_streams: usize,
    /// Where the stage sat on the run's clock (its ramp, then its hold).
    pub start_s: f64,
    pub end_s: f64,
    /// Streams open when the stage ended.
    pub open_at_end: u64,
    #[serde(flatten)]
    pub figures: Figures,
    /// Each `--slo`, judged over this stage alone.
    pub slos: Vec<Verdict>,
}

/// The first stage that broke, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Breakpoint {
    pub stage: usize,
    pub target_streams: usize,
    pub reason: String,
}

impl Breakpoint {
    /// The first of `stages` that broke (`StageReport::broken`), judged by the objectives when `judged`, else by the
    /// default rules; a run's report and a merged one find it the same way.
    pub(crate) fn first(stages: &[StageReport], judged: bool) -> Option<Breakpoint> {
        let first = stages.first()?;
        stages.iter().find_map(|stage| {
            let reason = stage.broken(first, judged)?;
            Some(Breakpoint { stage: stage.stage, target_streams: stage.target_streams, reason })
        })
    }
}

/// Below this success rate a stage counts as broken (without `--slo`).
const BREAK_SUCCESS_RATE: f64 = 0.99;
/// A stage whose first-event p99 is more than this many times the first stage's counts as broken
/// (without `--slo`).
const BREAK_FIRST_EVENT_FACTOR: u64 = 3;

impl StageReport {
    /// `open_at_start`: the previous stage's `open_at_end` (the streams it handed over).
    fn new(
        index: usize,
        stage: &StageOutcome,
        open_at_start: u64,
        elapsed_s: f64,
        outcome: &RunOutcome,
    ) -> StageReport {
        let start_s = stage.window.start.as_secs_f64();
        let end_s = stage.window.end.as_secs_f64();
        // A run stopped early (Ctrl-C) ends its last stage early.
        let duration_s = (end_s.min(elapsed_s) - start_s).max(0.0);
        StageReport {
            stage: index + 1,
            target_streams: stage.window.streams,
            start_s,
            end_s,
            open_at_end: stage.recorder.open_at_end,
            figures: Figures::of(&stage.recorder, duration_s, open_at_start, outcome.open_model, &outcome.step_names),
            slos: Vec::new(),
        }
    }

    /// Why this stage counts as broken, or None. With objectives, a failed one; without, a
    /// success rate under 99% or a first-event p99 over 3x the first stage's.
    fn broken(&self, first: &StageReport, judged: bool) -> Option<String> {
        if judged {
            let failed: Vec<&str> = self.slos.iter().filter(|v| !v.pass).map(|v| v.slo.as_str()).collect();
            return (!failed.is_empty()).then(|| format!("failed --slo {}", failed.join(", ")));
        }
        let streams = &self.figures.streams;
        if streams.success_rate < BREAK_SUCCESS_RATE {
            return Some(format!(
                "success rate {:.2}% < {}%",
                streams.success_rate * 100.0,
                BREAK_SUCCESS_RATE * 100.0
            ));
        }
        let (p99, base) = (self.figures.latency_us.first_event.p99, first.figures.latency_us.first_event.p99);
        if base > 0 && p99 > BREAK_FIRST_EVENT_FACTOR * base {
            return Some(format!("first-event p99 {} us > {BREAK_FIRST_EVENT_FACTOR}x stage 1's {} us", p99, base));
        }
        None
    }
}

/// The generator's own memory: what the streams cost it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Resident memory once every worker was set up, before any stream connected.
    pub rss_before_kib: u64,
    /// The most resident memory while every worker still ran its streams.
    pub rss_peak_kib: u64,
    /// Where the peak comes from: `vmhwm` (the kernel's high-water mark, reset once the workers were set up: no
    /// spike is missed) or `sampled` (VmRSS every 50 ms, where the reset is not permitted).
    pub peak_source: String,
    /// (peak - before) / peak concurrent streams.
    pub per_stream_bytes: u64,
}

/// What each request asked for, with secret header values redacted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestReport {
    pub method: String,
    /// `Name: value` lines; `Authorization`, cookies, keys and tokens show `[redacted]`.
    pub headers: Vec<String>,
    /// `--openai`: the API, model, max_tokens and where prompts come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai: Option<String>,
    /// `https://`: how the client's TLS was set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
}

/// `https://`: what the client trusted and offered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsSettings {
    /// False with `--insecure`: any certificate was accepted.
    pub verify: bool,
    /// Where the trusted roots came from.
    pub roots: String,
    /// `--tls-resume`: reconnecting users resumed their sessions.
    pub resume: bool,
    /// `--cert`: a client certificate was presented.
    pub client_cert: bool,
}

impl RequestReport {
    pub fn of(cfg: &crate::config::RunConfig) -> RequestReport {
        RequestReport {
            method: cfg.method.clone(),
            headers: crate::requests::stream_headers(cfg)
                .iter()
                .map(|(name, value)| format!("{name}: {}", crate::config::redact_header(name, value)))
                .collect(),
            openai: cfg.llm.as_ref().map(|l| l.describe()),
            tls: cfg.tls.as_ref().map(|t| TlsSettings {
                verify: t.verify,
                roots: t.roots.clone(),
                resume: t.resume,
                client_cert: t.client_cert,
            }),
        }
    }
}

/// The whole report, shaped as the `--json` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    pub target: String,
    /// The command line that ran it (or merged it), secrets redacted as in `request.headers`
    /// (`config::redact_argv`); absent for runs made in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Set by the caller that knows the config (absent for reports built from an outcome alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestReport>,
    pub engine: Engine,
    pub duration_s: f64,
    /// Ctrl-C ended the run before its duration or stream count.
    pub stopped_by_signal: bool,
    #[serde(flatten)]
    pub figures: Figures,
    /// Absent where /proc/self/status cannot be read.
    pub memory: Option<MemoryReport>,
    /// Each `--slo`, judged over the whole run.
    pub slos: Vec<Verdict>,
    /// `--stages`: each stage alone (empty without stages).
    pub stages: Vec<StageReport>,
    /// `--stages`: the first stage that broke; absent when every stage held (or without stages).
    pub breakpoint: Option<Breakpoint>,
    /// When the run's clock started, and on which host (hosts joined by `+` in a merged report). Absent from reports
    /// written before they were kept: read as zero and empty.
    #[serde(default)]
    pub started_at: timeline::StartedAt,
    #[serde(default)]
    pub host: String,
    /// `--shard K/N`: which share of a run split over N processes this report holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::config::ShardOf>,
    /// `--start-at`: the barrier on this host's wall clock, and how late this process reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<StartAt>,
    /// A merged report: one row per report merged (a shard, a host), so a bad node shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The run over time: one entry per `--report-interval`, the last one partial. A merged report's is written
    /// beside it, from the reports' own (`report::merge_timeline`), when every one of them has one.
    #[serde(default)]
    pub timeline: Vec<timeline::TimelineEntry>,
}

impl Report {
    /// The report of a finished run, with each `slo` judged over the run and over each stage.
    pub fn new(target: &str, outcome: &RunOutcome, slos: &[Slo]) -> Report {
        let rec = &outcome.recorder;
        let duration_s = outcome.elapsed.as_secs_f64();
        let figures = Figures::of(rec, duration_s, 0, outcome.open_model, &outcome.step_names);
        let mut stages: Vec<StageReport> = Vec::with_capacity(outcome.stages.len());
        for (i, stage) in outcome.stages.iter().enumerate() {
            let open_at_start = stages.last().map_or(0, |previous| previous.open_at_end);
            stages.push(StageReport::new(i, stage, open_at_start, duration_s, outcome));
        }
        for stage in &mut stages {
            stage.slos = slos.iter().map(|slo| verdict::judge(slo, &stage.figures)).collect();
        }
        let breakpoint = Breakpoint::first(&stages, !slos.is_empty());
        let timeline: Vec<timeline::TimelineEntry> = outcome.timeline.iter().map(timeline::TimelineEntry::of).collect();
        let mut figures = figures;
        figures.generator = figures.generator.take().map(|g| {
            let cores_busy = outcome.cores_busy.iter().map(|b| (b * 1e4).round() / 1e4).collect();
            generator::Generator { cores_busy, ..g.with_intervals(&timeline) }
        });
        Report {
            version: env!("CARGO_PKG_VERSION").to_string(),
            target: target.to_string(),
            command_line: None,
            request: None,
            engine: Engine { driver: outcome.driver.to_string(), threads: outcome.threads },
            duration_s,
            stopped_by_signal: outcome.stopped_by_signal,
            memory: outcome.memory.map(|m| MemoryReport {
                rss_before_kib: m.rss_before_kib,
                rss_peak_kib: m.rss_peak_kib,
                peak_source: if m.kernel_peak { "vmhwm" } else { "sampled" }.to_string(),
                per_stream_bytes: (m.rss_peak_kib.saturating_sub(m.rss_before_kib) * 1024)
                    .checked_div(rec.peak_active)
                    .unwrap_or(0),
            }),
            slos: slos.iter().map(|slo| verdict::judge(slo, &figures)).collect(),
            figures,
            stages,
            breakpoint,
            started_at: timeline::StartedAt::of(outcome.started_at_us),
            host: outcome.host.clone(),
            shard: outcome.shard,
            start_at: outcome.start_at.map(|(unix_us, late_us)| StartAt {
                rfc3339: timeline::rfc3339(unix_us),
                unix_us,
                late_us,
                clock: "this host's wall clock (CLOCK_REALTIME): shards agree as far as their clocks do".into(),
            }),
            parts: Vec::new(),
            timeline,
        }
    }

    /// Every objective passed, over the run and over each stage.
    pub fn slos_pass(&self) -> bool {
        self.slos.iter().chain(self.stages.iter().flat_map(|s| &s.slos)).all(|v| v.pass)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::StageWindow;
    use crate::recorder::StreamEnd;

    /// A stage's recorder: `started` streams, the first `failed` of them refused, the rest completed after one event
    /// `first_event_us` after its request.
    fn stage_of(started: u64, failed: u64, first_event_us: u64) -> Recorder {
        let mut rec = Recorder::new();
        for i in 0..started {
            rec.stream_opened();
            if i < failed {
                rec.stream_closed(StreamEnd::Failed(Failure::ConnectRefused), 1_000, 0);
            } else {
                rec.histograms.first_event_us.record(first_event_us).unwrap();
                rec.stream_closed(StreamEnd::Completed, first_event_us + 1_000, 1);
            }
        }
        rec
    }

    /// The report of a run of `stages`, one second each, stage k targeting k x 100 streams; judged by the default
    /// rules (no `--slo`).
    fn ramp(stages: Vec<Recorder>) -> Report {
        let mut merged = Recorder::new();
        let mut outcomes = Vec::new();
        for (i, recorder) in stages.into_iter().enumerate() {
            merged.merge(&recorder);
            let at = |s: usize| Duration::from_secs(s as u64);
            let window = StageWindow {
                start: at(i),
                end: at(i + 1),
                streams: (i + 1) * 100,
                from_streams: i * 100,
                connect_rate_per_s: None,
            };
            outcomes.push(StageOutcome { window, recorder });
        }
        let elapsed = Duration::from_secs(outcomes.len() as u64);
        let outcome = RunOutcome::of(merged, outcomes, elapsed);
        Report::new("test", &outcome, &[])
    }

    /// The breakpoint as (stage, target streams), and its reason.
    fn breakpoint(report: &Report) -> Option<(usize, usize, &str)> {
        report.breakpoint.as_ref().map(|b| (b.stage, b.target_streams, b.reason.as_str()))
    }

    #[test]
    fn a_stage_under_99_percent_success_is_the_breakpoint() {
        // Exactly 99% holds; 98% breaks.
        let report = ramp(vec![stage_of(100, 0, 10_000), stage_of(100, 1, 10_000), stage_of(100, 2, 10_000)]);
        let rates: Vec<f64> = report.stages.iter().map(|s| s.figures.streams.success_rate).collect();
        assert_eq!(rates, vec![1.0, 0.99, 0.98]);
        assert_eq!(breakpoint(&report), Some((3, 300, "success rate 98.00% < 99%")));
    }

    #[test]
    fn a_stage_whose_first_event_p99_passes_3x_the_first_stages_is_the_breakpoint() {
        // 10 ms, then 2.9x and 3.5x that: only the last is over 3x.
        let report = ramp(vec![stage_of(100, 0, 10_000), stage_of(100, 0, 29_000), stage_of(100, 0, 35_000)]);
        let (stage, target, reason) = breakpoint(&report).expect("stage 3 broke");
        assert_eq!((stage, target), (3, 300));
        let (p99, base) =
            (report.stages[2].figures.latency_us.first_event.p99, report.stages[0].figures.latency_us.first_event.p99);
        assert_eq!(reason, format!("first-event p99 {p99} us > 3x stage 1's {base} us"));
        assert!(p99 > 3 * base && report.stages[1].figures.latency_us.first_event.p99 <= 3 * base);
    }

    #[test]
    fn a_healthy_ramp_has_no_breakpoint() {
        // Every stage succeeds (one at exactly 99%), and first events slow down, but never past 3x.
        let report = ramp(vec![stage_of(100, 0, 10_000), stage_of(200, 2, 20_000), stage_of(300, 0, 29_000)]);
        assert_eq!(report.stages.len(), 3);
        assert_eq!(breakpoint(&report), None);
        // Without stages there is nothing to break.
        assert_eq!(breakpoint(&ramp(Vec::new())), None);
    }

    #[test]
    fn the_first_broken_stage_is_named_not_a_later_one() {
        // Stage 2 breaks on latency; stage 3 breaks worse on both rules; stage 4 recovers.
        let report = ramp(vec![
            stage_of(100, 0, 10_000),
            stage_of(100, 0, 35_000),
            stage_of(100, 50, 90_000),
            stage_of(100, 0, 10_000),
        ]);
        let (stage, target, reason) = breakpoint(&report).expect("a stage broke");
        assert_eq!((stage, target), (2, 200), "{reason}");
        assert!(reason.starts_with("first-event p99 "), "{reason}");
        // The success-rate rule alone names its first stage too.
        let report = ramp(vec![stage_of(100, 0, 10_000), stage_of(100, 5, 10_000), stage_of(100, 50, 10_000)]);
        assert_eq!(breakpoint(&report), Some((2, 200, "success rate 95.00% < 99%")));
    }
}
