//! Per-core measurements: microsecond HdrHistograms, counters, and failures counted by a `Copy` enum. No locks, no atomics: each core owns one and they merge after the join.

use hdrhistogram::Histogram;

/// Largest value a histogram holds (24 h in µs); larger samples are clamped to it.
pub const HISTOGRAM_MAX: u64 = 24 * 3600 * 1_000_000;
/// Three significant digits: 0.1% value precision.
const HISTOGRAM_SIGFIG: u8 = 3;
/// An arrival that starts more than this after its schedule is a late start (the generator fell
/// behind); its lag is in the `start_lag_us` histogram either way.
pub const LATE_START_US: u64 = 10_000;
/// HTTP status codes are three digits, so a flat table indexed by code covers them all.
const STATUS_SLOTS: usize = 1000;

/// Why a stream failed. Small and `Copy` so the hot path counts it without formatting anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The target refused the TCP connection (nothing listening).
    ConnectRefused,
    /// The TCP handshake did not finish within `--connect-timeout`.
    ConnectTimeout,
    /// No local port (or address) was free for another connection to that target.
    PortsExhausted,
    /// Any other error while connecting (unreachable network, descriptor limit, ...).
    ConnectOther,
    /// The peer reset the connection after it was established.
    Reset,
    /// The response status was not 2xx; the code is counted separately.
    HttpStatus(u16),
    /// A 2xx response whose Content-Type is not `text/event-stream`.
    WrongContentType,
    /// The response head or the chunked framing broke the protocol (or a bound on it).
    MalformedHttp,
    /// The connection or the body ended before the response or the event under way was complete.
    PrematureEof,
    /// One event outgrew `--max-event-size`.
    EventTooLarge,
    /// Any other socket error after the connection was established.
    Io,
    /// No complete response head within `--header-timeout` of the request.
    HeaderTimeout,
    /// No event within `--first-event-timeout` of the response head.
    FirstEventTimeout,
    /// No event within `--idle-timeout` of the last one (comments do not count).
    IdleTimeout,
    /// No byte at all within `--byte-idle-timeout` (a half-open connection).
    ByteIdleTimeout,
    /// `--openai`: an error object inside a 2xx stream (the model server gave up mid-answer).
    LlmError,
    /// A `--scenario` HTTP step failed (no answer, a non-2xx status, or a value it should extract was missing).
    StepFailed,
    /// TLS: the server's certificate chains to no trusted root (add its CA with `--cacert`).
    TlsUntrusted,
    /// TLS: the certificate is valid, but not for the URL's host.
    TlsNameMismatch,
    /// TLS: the certificate has expired, or is not valid yet.
    TlsExpired,
    /// TLS: the handshake did not finish within `--connect-timeout` of the TCP connect.
    TlsHandshakeTimeout,
    /// TLS: the server sent an alert (it refused our certificate, version or ciphers, say).
    TlsAlert,
    /// TLS: any other protocol error (a bad record, a failed decryption, a server that broke the protocol).
    TlsError,
    /// A redirect that cannot be followed: its Location is not an http(s) URL or does not parse, there are several,
    /// or it is `https://` in a run without TLS (no `https://` target) or to a host TLS cannot name.
    BadRedirect,
    /// More redirects in one stream than `--max-redirects` (a loop, or a chain too long).
    TooManyRedirects,
    /// A compressed body (gzip, deflate, br) that does not decode: corrupt data, a checksum that
    /// does not match, or bytes after the end of the compressed stream.
    BadEncoding,
    /// A body coding this client does not decode (`compress`, `zstd`, an unknown name), or two
    /// codings on one body.
    UnsupportedEncoding,
}

impl Failure {
    /// The classes in report order; `HttpStatus` stands for all codes.
    pub const ALL: [Failure; 27] = [
        Failure::ConnectRefused,
        Failure::ConnectTimeout,
        Failure::PortsExhausted,
        Failure::ConnectOther,
        Failure::Reset,
        Failure::HttpStatus(0),
        Failure::WrongContentType,
        Failure::MalformedHttp,
        Failure::PrematureEof,
        Failure::EventTooLarge,
        Failure::Io,
        Failure::HeaderTimeout,
        Failure::FirstEventTimeout,
        Failure::IdleTimeout,
        Failure::ByteIdleTimeout,
        Failure::LlmError,
        Failure::StepFailed,
        Failure::TlsUntrusted,
        Failure::TlsNameMismatch,
        Failure::TlsExpired,
        Failure::TlsHandshakeTimeout,
        Failure::TlsAlert,
        Failure::TlsError,
        Failure::BadRedirect,
        Failure::TooManyRedirects,
        Failure::BadEncoding,
        Failure::UnsupportedEncoding,
    ];

    pub fn index(self) -> usize {
        match self {
            Failure::ConnectRefused => 0,
            Failure::ConnectTimeout => 1,
            Failure::PortsExhausted => 2,
            Failure::ConnectOther => 3,
            Failure::Reset => 4,
            Failure::HttpStatus(_) => 5,
            Failure::WrongContentType => 6,
            Failure::MalformedHttp => 7,
            Failure::PrematureEof => 8,
            Failure::EventTooLarge => 9,
            Failure::Io => 10,
            Failure::HeaderTimeout => 11,
            Failure::FirstEventTimeout => 12,
            Failure::IdleTimeout => 13,
            Failure::ByteIdleTimeout => 14,
            Failure::LlmError => 15,
            Failure::StepFailed => 16,
            Failure::TlsUntrusted => 17,
            Failure::TlsNameMismatch => 18,
            Failure::TlsExpired => 19,
            Failure::TlsHandshakeTimeout => 20,
            Failure::TlsAlert => 21,
            Failure::TlsError => 22,
            Failure::BadRedirect => 23,
            Failure::TooManyRedirects => 24,
            Failure::BadEncoding => 25,
            Failure::UnsupportedEncoding => 26,
        }
    }

    /// The report's name for the class (`HttpStatus` is reported per code as `http_<code>`).
    pub fn name(self) -> &'static str {
        match self {
            Failure::ConnectRefused => "connect_refused",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::PortsExhausted => "ports_exhausted",
            Failure::ConnectOther => "connect_error",
            Failure::Reset => "reset",
            Failure::HttpStatus(_) => "http_status",
            Failure::WrongContentType => "wrong_content_type",
            Failure::MalformedHttp => "malformed_http",
            Failure::PrematureEof => "premature_eof",
            Failure::EventTooLarge => "event_too_large",
            Failure::Io => "io_error",
            Failure::HeaderTimeout => "header_timeout",
            Failure::FirstEventTimeout => "first_event_timeout",
            Failure::IdleTimeout => "idle_timeout",
            Failure::ByteIdleTimeout => "byte_idle_timeout",
            Failure::LlmError => "llm_error",
            Failure::StepFailed => "step_failed",
            Failure::TlsUntrusted => "tls_untrusted",
            Failure::TlsNameMismatch => "tls_name_mismatch",
            Failure::TlsExpired => "tls_expired",
            Failure::TlsHandshakeTimeout => "tls_handshake_timeout",
            Failure::TlsAlert => "tls_alert",
            Failure::TlsError => "tls_error",
            Failure::BadRedirect => "bad_redirect",
            Failure::TooManyRedirects => "too_many_redirects",
            Failure::BadEncoding => "bad_encoding",
            Failure::UnsupportedEncoding => "unsupported_encoding",
        }
    }
}

/// Streams whose response body arrived compressed, by coding (counted once each, at the head).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressedStreams {
    pub gzip: u64,
    pub deflate: u64,
    pub br: u64,
}

impl CompressedStreams {
    fn add(&mut self, other: &CompressedStreams) {
        self.gzip += other.gzip;
        self.deflate += other.deflate;
        self.br += other.br;
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The response ended by its own framing with no event left unfinished.
    Completed,
    Failed(Failure),
    /// Still open when the run ended (duration over): neither a success nor a failure.
    Interrupted,
}

impl StreamEnd {
    /// The server answered 204 No Content, which tells an EventSource to stop reconnecting (WHATWG HTML).
    pub fn stops_reconnecting(self) -> bool {
        self == StreamEnd::Failed(Failure::HttpStatus(crate::http1::response::NO_CONTENT))
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX, HISTOGRAM_SIGFIG).expect("static histogram bounds are valid")
}

/// The run's histograms, in microseconds except `events_per_stream`.
#[derive(Debug, Clone)]
pub struct Histograms {
    pub connect_us: Histogram<u64>,
    pub headers_us: Histogram<u64>,
    pub first_event_us: Histogram<u64>,
    pub gap_us: Histogram<u64>,
    pub stream_us: Histogram<u64>,
    pub events_per_stream: Histogram<u64>,
    /// Each stream's longest gap between events (streams with two events or more).
    pub max_gap_us: Histogram<u64>,
    /// With `--stream-duration`: how long streams ended early (by the server, a proxy, an
    /// error) had lasted. A proxy that cuts streams at 60 s shows as a spike at 60 s.
    pub premature_end_us: Histogram<u64>,
    /// `--reconnect`: from a stream's end to its reconnect's request.
    pub reconnect_delay_us: Histogram<u64>,
    /// `--arrival-rate`: from each started stream's scheduled start to its actual start.
    pub start_lag_us: Histogram<u64>,
    /// `https://`: from the TCP connect to the end of the TLS handshake (full and resumed alike).
    pub tls_handshake_us: Histogram<u64>,
    /// From the response head to the stream's first event: how long the stream's first event was held back behind
    /// its head (a proxy that buffers the body shows here).
    pub head_wait_us: Histogram<u64>,
    /// `--send-time`: each event's receipt minus its send time (0 for a send time after its receipt, counted apart).
    pub delivery_lag_us: Histogram<u64>,
    /// `--send-time`: per read that brought two events or more with send times, how far apart they were sent.
    pub read_spread_us: Histogram<u64>,
    /// The age of streams cut short by the connection (`premature_eof`, `reset`, `io`) after their head:
    /// those cut after `CUT_IDLE_AFTER_US` without an event, and those cut while events flowed.
    pub cut_idle_us: Histogram<u64>,
    pub cut_flowing_us: Histogram<u64>,
}

/// A stream cut after this long without an event was cut while idle (comments do not count as events).
pub const CUT_IDLE_AFTER_US: u64 = 1_000_000;

impl Histograms {
    fn new() -> Histograms {
        Histograms {
            connect_us: histogram(),
            headers_us: histogram(),
            first_event_us: histogram(),
            gap_us: histogram(),
            stream_us: histogram(),
            events_per_stream: histogram(),
            max_gap_us: histogram(),
            premature_end_us: histogram(),
            reconnect_delay_us: histogram(),
            start_lag_us: histogram(),
            tls_handshake_us: histogram(),
            head_wait_us: histogram(),
            delivery_lag_us: histogram(),
            read_spread_us: histogram(),
            cut_idle_us: histogram(),
            cut_flowing_us: histogram(),
        }
    }

    fn add(&mut self, other: &Histograms) {
        let pairs = [
            (&mut self.connect_us, &other.connect_us),
            (&mut self.headers_us, &other.headers_us),
            (&mut self.first_event_us, &other.first_event_us),
            (&mut self.gap_us, &other.gap_us),
            (&mut self.stream_us, &other.stream_us),
            (&mut self.events_per_stream, &other.events_per_stream),
            (&mut self.max_gap_us, &other.max_gap_us),
            (&mut self.premature_end_us, &other.premature_end_us),
            (&mut self.reconnect_delay_us, &other.reconnect_delay_us),
            (&mut self.start_lag_us, &other.start_lag_us),
            (&mut self.tls_handshake_us, &other.tls_handshake_us),
            (&mut self.head_wait_us, &other.head_wait_us),
            (&mut self.delivery_lag_us, &other.delivery_lag_us),
            (&mut self.read_spread_us, &other.read_spread_us),
            (&mut self.cut_idle_us, &other.cut_idle_us),
            (&mut self.cut_flowing_us, &other.cut_flowing_us),
        ];
        for (mine, theirs) in pairs {
            mine.add(theirs).expect("histograms share bounds");
        }
    }
}

/// `--openai`: token timings and counts. Boxed in the recorder and allocated only in LLM mode.
#[derive(Debug, Clone)]
pub struct LlmRecorder {
    /// Request to the first chunk with answer text (`delta.content` or `text`); a role-only chunk is no token.
    pub ttft_us: Histogram<u64>,
    /// Request to the first chunk with reasoning text (`reasoning_content` or `reasoning`).
    pub first_reasoning_us: Histogram<u64>,
    /// Every gap between two chunks that carry output (answer or reasoning text): one sample per gap.
    pub itl_us: Histogram<u64>,
    /// Per stream: (last output chunk - first output chunk) / (output tokens - 1).
    pub tpot_us: Histogram<u64>,
    /// Per stream: first output chunk to last (the decode phase).
    pub generation_us: Histogram<u64>,
    /// Per stream: output tokens / output chunks, in hundredths (250 = 2.5 tokens per chunk).
    pub tokens_per_chunk_x100: Histogram<u64>,
    /// Per completed stream: output tokens / (request to end of stream), in tokens per second.
    pub output_tokens_per_s: Histogram<u64>,
    /// Output tokens: `usage.completion_tokens`, or the output chunks counted where a stream had no usage.
    pub output_tokens: u64,
    /// Per completed stream: its output tokens (usage or chunks, as `output_tokens`).
    pub output_tokens_per_stream: Histogram<u64>,
    /// The output tokens apart by how their streams ended: a cut stream's count says when it was cut, not how long
    /// the model's answers are, so averages are taken over completed streams only.
    pub ended: TokensByEnd,
    pub input_tokens: u64,
    pub reasoning_tokens: u64,
    /// Streams whose token counts came from a `usage` chunk, and those whose output was counted by chunks.
    pub usage_streams: u64,
    pub estimated_streams: u64,
    /// Streams whose last `usage` held a count that is no token count (negative, fractional, a string, 2^32 or
    /// more): set aside, so their output was counted by chunks (and they are among `estimated_streams`).
    pub usage_unreadable: u64,
    /// Completed streams without `usage`: the server does not send it (cut streams never do).
    pub completed_without_usage: u64,
    pub output_chunks: u64,
    /// Role-only chunks (not tokens), payloads that are not JSON, and completed streams without `[DONE]`.
    pub role_chunks: u64,
    pub unparsed_chunks: u64,
    pub missing_done: u64,
    /// `finish_reason` of each stream that gave one: stop, length, anything else.
    pub finish_stop: u64,
    pub finish_length: u64,
    pub finish_other: u64,
    /// `--scenario`: figures per turn number (index 0 is turn 1).
    pub turns: Vec<TurnRecorder>,
    /// `--scenario`: each HTTP step's answer time and failures, in step order.
    pub steps: Vec<StepRecorder>,
}

/// Streams that reached the token timeline, and their output tokens, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokensByEnd {
    /// Ended by their own framing.
    pub completed_streams: u64,
    pub completed_output_tokens: u64,
    /// Still streaming when the run ended (`-d`).
    pub cut_streams: u64,
    pub cut_output_tokens: u64,
    /// Failed after their request started (a status, a reset, a stall, an error chunk ...).
    pub failed_streams: u64,
    pub failed_output_tokens: u64,
}

impl TokensByEnd {
    pub fn add(&mut self, other: &TokensByEnd) {
        self.completed_streams += other.completed_streams;
        self.completed_output_tokens = self.completed_output_tokens.saturating_add(other.completed_output_tokens);
        self.cut_streams += other.cut_streams;
        self.cut_output_tokens = self.cut_output_tokens.saturating_add(other.cut_output_tokens);
        self.failed_streams += other.failed_streams;
        self.failed_output_tokens = self.failed_output_tokens.saturating_add(other.failed_output_tokens);
    }
}

/// One turn number of a `--scenario` conversation, over every user.
#[derive(Debug, Clone)]
pub struct TurnRecorder {
    pub ttft_us: Histogram<u64>,
    pub itl_us: Histogram<u64>,
    pub streams: u64,
    pub failed: u64,
    /// Completed streams of this turn, and their tokens (a cut or failed turn's counts are no answer's length).
    pub completed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One HTTP step of a `--scenario`.
#[derive(Debug, Clone)]
pub struct StepRecorder {
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
}

impl LlmRecorder {
    pub fn new(turns: usize, steps: usize) -> LlmRecorder {
        LlmRecorder {
            ttft_us: histogram(),
            first_reasoning_us: histogram(),
            itl_us: histogram(),
            tpot_us: histogram(),
            generation_us: histogram(),
            tokens_per_chunk_x100: histogram(),
            output_tokens_per_s: histogram(),
            output_tokens: 0,
            output_tokens_per_stream: histogram(),
            ended: TokensByEnd::default(),
            input_tokens: 0,
            reasoning_tokens: 0,
            usage_streams: 0,
            estimated_streams: 0,
            usage_unreadable: 0,
            completed_without_usage: 0,
            output_chunks: 0,
            role_chunks: 0,
            unparsed_chunks: 0,
            missing_done: 0,
            finish_stop: 0,
            finish_length: 0,
            finish_other: 0,
            turns: (0..turns)
                .map(|_| TurnRecorder {
                    ttft_us: histogram(),
                    itl_us: histogram(),
                    streams: 0,
                    failed: 0,
                    completed: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                })
                .collect(),
            steps: (0..steps).map(|_| StepRecorder { latency_us: histogram(), ok: 0, failed: 0 }).collect(),
        }
    }

    /// The same shape, every figure zero (a fresh stage's).
    pub fn empty_like(&self) -> LlmRecorder {
        LlmRecorder::new(self.turns.len(), self.steps.len())
    }

    pub fn merge(&mut self, other: &LlmRecorder) {
        let add =
            |mine: &mut Histogram<u64>, theirs: &Histogram<u64>| mine.add(theirs).expect("histograms share bounds");
        add(&mut self.ttft_us, &other.ttft_us);
        add(&mut self.first_reasoning_us, &other.first_reasoning_us);
        add(&mut self.itl_us, &other.itl_us);
        add(&mut self.tpot_us, &other.tpot_us);
        add(&mut self.generation_us, &other.generation_us);
        add(&mut self.tokens_per_chunk_x100, &other.tokens_per_chunk_x100);
        add(&mut self.output_tokens_per_s, &other.output_tokens_per_s);
        // Token counts come from servers' usage numbers, which may be absurd: they saturate.
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        add(&mut self.output_tokens_per_stream, &other.output_tokens_per_stream);
        self.ended.add(&other.ended);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
        self.usage_streams += other.usage_streams;
        self.estimated_streams += other.estimated_streams;
        self.usage_unreadable += other.usage_unreadable;
        self.completed_without_usage += other.completed_without_usage;
        self.output_chunks += other.output_chunks;
        self.role_chunks += other.role_chunks;
        self.unparsed_chunks += other.unparsed_chunks;
        self.missing_done += other.missing_done;
        self.finish_stop += other.finish_stop;
        self.finish_length += other.finish_length;
        self.finish_other += other.finish_other;
        for (mine, theirs) in self.turns.iter_mut().zip(&other.turns) {
            add(&mut mine.ttft_us, &theirs.ttft_us);
            add(&mut mine.itl_us, &theirs.itl_us);
            mine.streams += theirs.streams;
            mine.failed += theirs.failed;
            mine.completed += theirs.completed;
            mine.input_tokens = mine.input_tokens.saturating_add(theirs.input_tokens);
            mine.output_tokens = mine.output_tokens.saturating_add(theirs.output_tokens);
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            add(&mut mine.latency_us, &theirs.latency_us);
            mine.ok += theirs.ok;
            mine.failed += theirs.failed;
        }
    }
}

/// One core's measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub histograms: Histograms,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    pub streams_interrupted: u64,
    pub events: u64,
    /// Every byte read from sockets: heads, framing and payload.
    pub bytes: u64,
    /// Sum over streams of request start to stream end, for events/s per stream.
    pub stream_time_us: u64,
    /// Gaps between events longer than `--stall-threshold`.
    pub stalls: u64,
    /// `--stall-threshold` in µs (u64::MAX: none). A setting of the measurement, kept here
    /// because every stream on the core shares it.
    pub stall_threshold_us: u64,
    /// `--reconnect`: streams opened as a reconnect (after a wait, with Last-Event-ID when known).
    pub reconnects: u64,
    /// `--reconnect`: virtual users that stopped reconnecting because the server answered 204 No Content.
    pub users_stopped_by_204: u64,
    /// Redirects followed (hops), over all streams.
    pub redirects: u64,
    /// Kept-alive connections that had received bytes or an EOF while idle, found before their reuse: closed, and
    /// the stream sent on a new connection (those bytes answer nothing this generator asked).
    pub stale_keepalive: u64,
    /// `--streams-log`: ended streams left out of the log (a core's buffer full, or the writer behind).
    pub streams_log_dropped: u64,
    /// `--verify-seq`: ids skipped (events lost) and ids seen again (duplicates).
    pub lost_events: u64,
    pub duplicate_events: u64,
    /// `--verify-seq`: events whose own id was not a decimal number (or held NUL), so not checked.
    pub ids_not_numeric: u64,
    /// `--arrival-rate`: arrivals due, those dropped because `--max-streams` were open, and
    /// those started more than `LATE_START_US` after their schedule.
    pub arrivals: u64,
    pub dropped_starts: u64,
    pub late_starts: u64,
    /// `https://`: TLS handshakes that completed in full, and those that resumed an earlier session.
    pub tls_full_handshakes: u64,
    pub tls_resumed_handshakes: u64,
    /// Streams whose body arrived compressed, by coding (decoded, or failed as `bad_encoding`).
    pub compressed: CompressedStreams,
    failures: [u64; Failure::ALL.len()],
    status_counts: Box<[u64; STATUS_SLOTS]>,
    /// Streams open when this recorder's stretch ended: its stage's end, or the run's stop.
    pub open_at_end: u64,
    /// Streams open now (from connect start to stream end).
    pub active: u64,
    pub peak_active: u64,
    /// `active` at each boundary of the shared sampling clock (every 100 ms from the run's start), for a cross-core
    /// peak: filled in where streams open and close (`level_until`), never by a timer.
    pub active_samples: Vec<u32>,
    /// The last boundary whose level `active_samples` holds.
    active_tick: usize,
    /// `--openai`: token figures; `None` outside LLM mode.
    pub llm: Option<Box<LlmRecorder>>,
    /// Reads that brought at least one event, and the events that came in a read with at least one other.
    pub reads_with_events: u64,
    pub events_in_shared_reads: u64,
    /// `--send-time`: how events are timed against their send time; `None` without it.
    pub delivery: Option<Box<DeliveryClock>>,
    /// `--send-time`: events that carried no readable send time, and those whose send time was after their receipt
    /// (clocks apart: recorded as a lag of 0).
    pub send_time_missing: u64,
    pub negative_lag: u64,
    /// `--send-time`: events whose send time was a whole second (as OpenAI's `created` always is).
    pub send_time_whole_seconds: u64,
    /// The generator's own load: the busiest share of an interval this core spent busy (millionths), the latest
    /// its interval timer fired, the intervals in which it was saturated (`interval_saturated`), and those in which
    /// its timer was late while it was mostly idle (the host's other work had the CPU).
    pub busy_max_ppm: u32,
    pub loop_lag_max_us: u64,
    pub saturated_intervals: u32,
    pub contended_intervals: u32,
    /// Intervals timed for load (none in a run or stage shorter than one `--report-interval`).
    pub load_intervals: u32,
}

/// A core over this busy share of an interval (millionths) was saturated.
pub const BUSY_SATURATED_PPM: u32 = 900_000;
/// A core whose interval timer fired this late while it was at least `BUSY_LOADED_PPM` busy was saturated: its loop
/// could not get round in time. Late while mostly idle, the CPU went to other work on the host.
pub const LOOP_LAG_SATURATED_US: u64 = 5_000;
pub const BUSY_LOADED_PPM: u32 = 500_000;

/// Whether an interval with this busy share and timer lateness saturated its core.
pub fn interval_saturated(busy_ppm: u32, loop_lag_us: u64) -> bool {
    busy_ppm > BUSY_SATURATED_PPM || (loop_lag_us > LOOP_LAG_SATURATED_US && busy_ppm >= BUSY_LOADED_PPM)
}

/// `--send-time`: where an event's send time is read, the clock its receipt is read against (the wall clock at the
/// core's start, moved on by the monotonic one), and the current read's earliest and latest send times.
#[derive(Debug, Clone)]
pub struct DeliveryClock {
    pub send_time: std::sync::Arc<crate::send_time::SendTime>,
    origin: std::time::Instant,
    origin_unix_us: u64,
    read_first_us: u64,
    read_last_us: u64,
    read_timed: u32,
}

impl DeliveryClock {
    pub fn new(
        send_time: std::sync::Arc<crate::send_time::SendTime>,
        origin: std::time::Instant,
        origin_unix_us: u64,
    ) -> Self {
        DeliveryClock { send_time, origin, origin_unix_us, read_first_us: 0, read_last_us: 0, read_timed: 0 }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            histograms: Histograms::new(),
            streams_started: 0,
            streams_completed: 0,
            streams_failed: 0,
            streams_interrupted: 0,
            events: 0,
            bytes: 0,
            stream_time_us: 0,
            stalls: 0,
            stall_threshold_us: u64::MAX,
            reconnects: 0,
            users_stopped_by_204: 0,
            redirects: 0,
            stale_keepalive: 0,
            streams_log_dropped: 0,
            lost_events: 0,
            duplicate_events: 0,
            ids_not_numeric: 0,
            arrivals: 0,
            dropped_starts: 0,
            late_starts: 0,
            tls_full_handshakes: 0,
            tls_resumed_handshakes: 0,
            compressed: CompressedStreams::default(),
            failures: [0; Failure::ALL.len()],
            status_counts: Box::new([0; STATUS_SLOTS]),
            open_at_end: 0,
            active: 0,
            peak_active: 0,
            active_samples: Vec::new(),
            active_tick: 0,
            llm: None,
            reads_with_events: 0,
            events_in_shared_reads: 0,
            delivery: None,
            send_time_missing: 0,
            negative_lag: 0,
            send_time_whole_seconds: 0,
            busy_max_ppm: 0,
            loop_lag_max_us: 0,
            saturated_intervals: 0,
            contended_intervals: 0,
            load_intervals: 0,
        }
    }

    /// A stream was cut short at `age_us`, `quiet_us` after its last event (or its head, if it had none).
    pub fn record_cut(&mut self, age_us: u64, quiet_us: u64) {
        let h = &mut self.histograms;
        let ages = if quiet_us >= CUT_IDLE_AFTER_US { &mut h.cut_idle_us } else { &mut h.cut_flowing_us };
        ages.saturating_record(age_us);
    }

    /// The core's load over the interval just ended: its busy share (millionths) and its timer's lateness.
    pub fn note_load(&mut self, busy_ppm: u32, loop_lag_us: u64) {
        self.busy_max_ppm = self.busy_max_ppm.max(busy_ppm);
        self.loop_lag_max_us = self.loop_lag_max_us.max(loop_lag_us);
        self.load_intervals += 1;
        if interval_saturated(busy_ppm, loop_lag_us) {
            self.saturated_intervals += 1;
        } else if loop_lag_us > LOOP_LAG_SATURATED_US {
            self.contended_intervals += 1;
        }
    }

    /// A read is about to be parsed: its send-time spread starts afresh.
    pub fn read_started(&mut self) {
        if let Some(clock) = self.delivery.as_deref_mut() {
            clock.read_timed = 0;
        }
    }

    /// A read brought `events` events: counted, with the spread of their send times.
    pub fn read_done(&mut self, events: u64) {
        if events == 0 {
            return;
        }
        self.reads_with_events += 1;
        if events >= 2 {
            self.events_in_shared_reads += events;
        }
        if let Some(clock) = self.delivery.as_deref()
            && clock.read_timed >= 2
        {
            self.histograms.read_spread_us.saturating_record(clock.read_last_us - clock.read_first_us);
        }
    }

    /// `--send-time`: an event received at `now` with `data` and `id` (empty when it has no id of its own).
    pub fn on_delivered(&mut self, now: std::time::Instant, data: &[u8], id: &[u8]) {
        let Some(clock) = self.delivery.as_deref_mut() else { return };
        let Some(sent_us) = clock.send_time.read(data, id) else {
            self.send_time_missing += 1;
            return;
        };
        let received_us = clock.origin_unix_us + crate::units::micros_between(clock.origin, now);
        self.send_time_whole_seconds += u64::from(sent_us % 1_000_000 == 0);
        if clock.read_timed == 0 {
            (clock.read_first_us, clock.read_last_us) = (sent_us, sent_us);
        } else {
            clock.read_first_us = clock.read_first_us.min(sent_us);
            clock.read_last_us = clock.read_last_us.max(sent_us);
        }
        clock.read_timed = clock.read_timed.saturating_add(1);
        let lag_us = received_us.checked_sub(sent_us).unwrap_or_else(|| {
            self.negative_lag += 1;
            0
        });
        self.histograms.delivery_lag_us.saturating_record(lag_us);
    }

    pub fn stream_opened(&mut self) {
        self.streams_started += 1;
        self.active += 1;
        self.peak_active = self.peak_active.max(self.active);
    }

    /// Counts one stream's end. `stream_us` runs from the request's first byte (or the connect
    /// start, if the stream failed before any request) to the end.
    pub fn stream_closed(&mut self, end: StreamEnd, stream_us: u64, events: u64) {
        debug_assert!(self.active > 0, "a stream closed that never opened");
        self.active -= 1;
        self.stream_time_us += stream_us;
        self.histograms.stream_us.saturating_record(stream_us);
        self.histograms.events_per_stream.saturating_record(events);
        match end {
            StreamEnd::Completed => self.streams_completed += 1,
            StreamEnd::Interrupted => self.streams_interrupted += 1,
            StreamEnd::Failed(failure) => {
                self.streams_failed += 1;
                self.failures[failure.index()] += 1;
                if let Failure::HttpStatus(code) = failure {
                    self.status_counts[usize::from(code).min(STATUS_SLOTS - 1)] += 1;
                }
            }
        }
    }

    /// Records the level `active` has held since its last change for every sampling boundary up to `tick` (boundary
    /// `t` is `t` periods after the run's common start, the same moment on every core). Called before `active`
    /// changes and at the end, so each boundary gets the level that held at that instant: what a sampler woken at
    /// every boundary would read, without waking anything. Boundary 0 (the start) is 0. Allocates only past the
    /// room reserved up front (a run longer than a day), once per 100 ms at most.
    pub fn level_until(&mut self, tick: usize) {
        if tick <= self.active_tick {
            return;
        }
        if self.active_samples.len() <= tick {
            self.active_samples.resize(tick + 1, 0);
        }
        let active = u32::try_from(self.active).unwrap_or(u32::MAX);
        for sample in &mut self.active_samples[self.active_tick + 1..=tick] {
            *sample = (*sample).max(active);
        }
        self.active_tick = tick;
    }

    /// An arrival that found every `--max-streams` slot busy.
    pub fn start_dropped(&mut self) {
        self.arrivals += 1;
        self.dropped_starts += 1;
    }

    /// An arrival started `lag_us` after its schedule.
    pub fn start_on_schedule(&mut self, lag_us: u64) {
        self.arrivals += 1;
        self.histograms.start_lag_us.saturating_record(lag_us);
        self.late_starts += u64::from(lag_us > LATE_START_US);
    }

    /// Hands this stage's figures back and carries on in `fresh` (allocated up front): the
    /// streams open now carry over, everything else starts from zero.
    /// Hands over to the next stage's recorder at sampling boundary `tick`: boundaries up to it are this stage's.
    pub fn next_stage(&mut self, mut fresh: Recorder, tick: usize) -> Recorder {
        self.level_until(tick);
        self.open_at_end = self.active;
        fresh.active = self.active;
        fresh.active_tick = tick;
        fresh.stall_threshold_us = self.stall_threshold_us;
        debug_assert_eq!(fresh.llm.is_some(), self.llm.is_some(), "stage recorders share the LLM shape");
        std::mem::replace(self, fresh)
    }

    pub fn failures_of(&self, failure: Failure) -> u64 {
        self.failures[failure.index()]
    }

    /// `(status code, count)` for every HTTP status failure seen, in code order.
    pub fn status_failures(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.status_counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(code, n)| (code as u16, *n))
    }

    /// Folds another core's recorder into this one. Peaks come from the aligned samples: the sum
    /// of per-core peaks would overstate a peak that the cores reached at different times.
    pub fn merge(&mut self, other: &Recorder) {
        self.histograms.add(&other.histograms);
        self.streams_started += other.streams_started;
        self.streams_completed += other.streams_completed;
        self.streams_failed += other.streams_failed;
        self.streams_interrupted += other.streams_interrupted;
        self.events += other.events;
        self.bytes += other.bytes;
        self.stream_time_us += other.stream_time_us;
        self.stalls += other.stalls;
        self.reconnects += other.reconnects;
        self.users_stopped_by_204 += other.users_stopped_by_204;
        self.redirects += other.redirects;
        self.stale_keepalive += other.stale_keepalive;
        self.streams_log_dropped += other.streams_log_dropped;
        self.lost_events += other.lost_events;
        self.duplicate_events += other.duplicate_events;
        self.ids_not_numeric += other.ids_not_numeric;
        self.arrivals += other.arrivals;
        self.dropped_starts += other.dropped_starts;
        self.late_starts += other.late_starts;
        self.tls_full_handshakes += other.tls_full_handshakes;
        self.tls_resumed_handshakes += other.tls_resumed_handshakes;
        self.compressed.add(&other.compressed);
        self.reads_with_events += other.reads_with_events;
        self.events_in_shared_reads += other.events_in_shared_reads;
        self.send_time_missing += other.send_time_missing;
        self.negative_lag += other.negative_lag;
        self.send_time_whole_seconds += other.send_time_whole_seconds;
        self.busy_max_ppm = self.busy_max_ppm.max(other.busy_max_ppm);
        self.loop_lag_max_us = self.loop_lag_max_us.max(other.loop_lag_max_us);
        self.saturated_intervals += other.saturated_intervals;
        self.contended_intervals += other.contended_intervals;
        self.load_intervals += other.load_intervals;
        // A sum of fresh recorders (the run's, the engine's) learns where the send times came from.
        if self.delivery.is_none() {
            self.delivery.clone_from(&other.delivery);
        }
        for (mine, theirs) in self.failures.iter_mut().zip(other.failures.iter()) {
            *mine += theirs;
        }
        for (mine, theirs) in self.status_counts.iter_mut().zip(other.status_counts.iter()) {
            *mine += theirs;
        }
        self.open_at_end += other.open_at_end;
        self.active += other.active;
        if self.active_samples.len() < other.active_samples.len() {
            self.active_samples.resize(other.active_samples.len(), 0);
        }
        for (mine, theirs) in self.active_samples.iter_mut().zip(other.active_samples.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        match (&mut self.llm, &other.llm) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.llm = Some(theirs.clone()),
            _ => {}
        }
        let sampled_peak = self.active_samples.iter().copied().max().unwrap_or(0) as u64;
        self.peak_active = sampled_peak.max(self.peak_active).max(other.peak_active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_indexes_match_the_table() {
        for (i, failure) in Failure::ALL.iter().enumerate() {
            assert_eq!(failure.index(), i, "{failure:?}");
        }
    }

    #[test]
    fn counts_and_merge() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for rec in [&mut a, &mut b] {
            rec.stream_opened();
            rec.stream_opened();
            // Both open from before boundary 1 to after it; both closed by boundary 2.
            rec.level_until(1);
            rec.stream_closed(StreamEnd::Completed, 1_000, 5);
            rec.stream_closed(StreamEnd::Failed(Failure::HttpStatus(404)), 10, 0);
            rec.level_until(2);
        }
        a.compressed.gzip = 1;
        b.compressed = CompressedStreams { gzip: 2, deflate: 3, br: 4 };
        a.merge(&b);
        assert_eq!(a.compressed, CompressedStreams { gzip: 3, deflate: 3, br: 4 });
        assert_eq!((a.streams_started, a.streams_completed, a.streams_failed), (4, 2, 2));
        assert_eq!(a.failures_of(Failure::HttpStatus(0)), 2);
        assert_eq!(a.status_failures().collect::<Vec<_>>(), vec![(404, 2)]);
        assert_eq!(a.active_samples, vec![0, 4, 0]);
        assert_eq!(a.peak_active, 4);
        assert_eq!(a.histograms.events_per_stream.len(), 4);
        assert_eq!(a.stream_time_us, 2_020);
    }

    #[test]
    fn id_usage_and_stop_counters_merge() {
        let mut a = Recorder::new();
        a.llm = Some(Box::new(LlmRecorder::new(0, 0)));
        let mut b = a.clone();
        for (rec, n) in [(&mut a, 1), (&mut b, 2)] {
            rec.ids_not_numeric = n;
            rec.users_stopped_by_204 = n * 10;
            rec.llm.as_deref_mut().unwrap().usage_unreadable = n * 100;
        }
        a.merge(&b);
        assert_eq!((a.ids_not_numeric, a.users_stopped_by_204, a.llm.unwrap().usage_unreadable), (3, 30, 300));
    }

    /// A level holds across the boundaries it spans with nothing calling in between; a boundary recorded once keeps
    /// the level it had then, whatever comes later in its period.
    #[test]
    fn levels_fill_the_boundaries_they_held() {
        let mut rec = Recorder::new();
        rec.stream_opened();
        rec.level_until(0);
        assert!(rec.active_samples.is_empty(), "boundary 0 is the start, at 0");
        rec.level_until(4);
        rec.stream_opened();
        rec.level_until(4);
        rec.stream_closed(StreamEnd::Completed, 10, 1);
        rec.stream_closed(StreamEnd::Completed, 10, 1);
        rec.level_until(6);
        assert_eq!(rec.active_samples, vec![0, 1, 1, 1, 1, 0, 0]);
        assert_eq!(rec.peak_active, 2, "the within-period peak is the core's own");
    }

    #[test]
    fn stages_carry_open_streams_only() {
        let mut rec = Recorder::new();
        rec.stall_threshold_us = 5;
        rec.stream_opened();
        rec.stream_opened();
        rec.start_dropped();
        rec.start_on_schedule(LATE_START_US + 1);
        let first = rec.next_stage(Recorder::new(), 3);
        assert_eq!((first.streams_started, first.active, first.arrivals, first.dropped_starts), (2, 2, 2, 1));
        // Boundaries 1 to 3 were the first stage's; the next stage's start after them.
        assert_eq!(first.active_samples, vec![0, 2, 2, 2]);
        rec.level_until(5);
        assert_eq!(rec.active_samples, vec![0, 0, 0, 0, 2, 2]);
        assert_eq!(first.late_starts, 1);
        assert_eq!((rec.streams_started, rec.active, rec.stall_threshold_us, rec.arrivals), (0, 2, 5, 0));
        assert_eq!(first.open_at_end, 2);
        rec.stream_closed(StreamEnd::Completed, 10, 1);
        assert_eq!((rec.streams_completed, rec.active), (1, 1));
    }
}
