//! One stream's protocol state, sans IO: response head, body framing and SSE events in, timestamps and an outcome out.
//!
//! The worker owns the socket and the clock; it hands every read to [`StreamMachine::on_bytes`]
//! with the time the read returned, so all events that arrived in one read share that timestamp.

use std::time::Instant;

use crate::http1::body::BodyDecoder;
use crate::http1::response::{self, Framing, Head, MAX_HEAD_BYTES};
use crate::recorder::{Failure, Recorder, StreamEnd};
use crate::sse::Parser;

/// What the worker does next with this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    /// The stream is over. `reusable`: the connection may carry the next request.
    Done {
        end: StreamEnd,
        reusable: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Over,
}

/// Event timing for the stream under way.
#[derive(Debug, Clone, Copy)]
struct EventClock {
    request_start: Instant,
    last_event_at: Instant,
    events: u64,
}

impl EventClock {
    fn on_event(&mut self, now: Instant, rec: &mut Recorder) {
        let h = &mut rec.histograms;
        if self.events == 0 {
            h.first_event_us.saturating_record(micros_between(self.request_start, now));
        } else {
            h.gap_us.saturating_record(micros_between(self.last_event_at, now));
        }
        self.last_event_at = now;
        self.events += 1;
        rec.events += 1;
    }
}

pub fn micros_between(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

/// Reusable per-virtual-user parsing state: buffers keep their capacity from stream to stream.
pub struct StreamMachine {
    phase: Phase,
    /// Head bytes, only while a head spans reads; never more than `MAX_HEAD_BYTES`.
    head: Vec<u8>,
    keep_alive: bool,
    body: BodyDecoder,
    sse: Parser,
    clock: EventClock,
}

impl StreamMachine {
    pub fn new(max_event_size_bytes: usize) -> StreamMachine {
        let now = Instant::now();
        StreamMachine {
            phase: Phase::Over,
            head: Vec::new(),
            keep_alive: false,
            body: BodyDecoder::NoBody,
            sse: Parser::new(max_event_size_bytes),
            clock: EventClock { request_start: now, last_event_at: now, events: 0 },
        }
    }

    /// A new request starts being written now.
    pub fn begin(&mut self, now: Instant) {
        self.phase = Phase::Head;
        self.head.clear();
        self.keep_alive = false;
        self.body = BodyDecoder::NoBody;
        self.sse.reset();
        self.clock = EventClock { request_start: now, last_event_at: now, events: 0 };
    }

    pub fn request_start(&self) -> Instant {
        self.clock.request_start
    }

    pub fn events(&self) -> u64 {
        self.clock.events
    }

    /// The reconnection time the server asked for with `retry:`, if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.sse.retry_ms()
    }

    /// Bytes that one read returned at `now`.
    pub fn on_bytes(&mut self, now: Instant, input: &[u8], rec: &mut Recorder) -> Progress {
        debug_assert!(self.phase != Phase::Over, "bytes after the stream ended");
        rec.bytes += input.len() as u64;
        match self.phase {
            Phase::Head => self.on_head_bytes(now, input, rec),
            Phase::Body => self.on_body_bytes(now, input, rec),
            Phase::Over => Progress::NeedMore,
        }
    }

    /// The peer closed the connection (read returned 0).
    pub fn on_eof(&mut self) -> StreamEnd {
        let end = match self.phase {
            Phase::Head => StreamEnd::Failed(Failure::PrematureEof),
            Phase::Body if self.body.on_eof().is_err() => StreamEnd::Failed(Failure::PrematureEof),
            Phase::Body => self.end_of_body(),
            Phase::Over => StreamEnd::Completed,
        };
        self.phase = Phase::Over;
        end
    }

    fn on_head_bytes(&mut self, now: Instant, input: &[u8], rec: &mut Recorder) -> Progress {
        if self.head.is_empty() {
            // Common case: the whole head arrived in one read, so parse it in place.
            return match response::parse_head(input) {
                Ok(Some(head)) => self.on_head(now, head, &input[head.head_len..], rec),
                Ok(None) => {
                    self.head.extend_from_slice(input);
                    Progress::NeedMore
                }
                Err(_) => self.fail(Failure::MalformedHttp),
            };
        }
        let room = MAX_HEAD_BYTES.saturating_sub(self.head.len());
        let taken = input.len().min(room);
        self.head.extend_from_slice(&input[..taken]);
        match response::parse_head(&self.head) {
            Ok(Some(head)) => {
                // The head's tail and the body's first bytes are split between the buffer and
                // `input`; feed both, then hand the buffer back with its capacity.
                let buffered = std::mem::take(&mut self.head);
                let mut progress = self.on_head(now, head, &buffered[head.head_len..], rec);
                if progress == Progress::NeedMore && taken < input.len() {
                    progress = self.on_more_after_head(now, &input[taken..], rec);
                }
                if self.head.is_empty() {
                    // Keep the capacity unless a head after a 1xx started a new buffer meanwhile.
                    self.head = buffered;
                    self.head.clear();
                }
                progress
            }
            Ok(None) => Progress::NeedMore,
            Err(_) => self.fail(Failure::MalformedHttp),
        }
    }

    /// Bytes that follow a head in the same read: another head after an interim 1xx, or body.
    fn on_more_after_head(&mut self, now: Instant, rest: &[u8], rec: &mut Recorder) -> Progress {
        match self.phase {
            Phase::Head => self.on_head_bytes(now, rest, rec),
            Phase::Body => self.on_body_bytes(now, rest, rec),
            Phase::Over => Progress::NeedMore,
        }
    }

    fn on_head(&mut self, now: Instant, head: Head, rest: &[u8], rec: &mut Recorder) -> Progress {
        if (100..200).contains(&head.status) && head.status != 101 {
            // An interim response (100 Continue, 103 Early Hints): the real one follows.
            return if rest.is_empty() { Progress::NeedMore } else { self.on_head_bytes(now, rest, rec) };
        }
        rec.histograms.headers_us.saturating_record(micros_between(self.clock.request_start, now));
        if !(200..300).contains(&head.status) {
            return self.fail(Failure::HttpStatus(head.status));
        }
        if !head.is_event_stream {
            return self.fail(Failure::WrongContentType);
        }
        self.keep_alive = head.keep_alive;
        self.body = BodyDecoder::new(head.framing);
        self.phase = Phase::Body;
        if head.framing == Framing::NoBody || !rest.is_empty() {
            return self.on_body_bytes(now, rest, rec);
        }
        Progress::NeedMore
    }

    fn on_body_bytes(&mut self, now: Instant, input: &[u8], rec: &mut Recorder) -> Progress {
        let mut sse_failed = false;
        let sse = &mut self.sse;
        let clock = &mut self.clock;
        let decoded = self.body.decode(input, |payload| {
            // After an SSE error the stream is over; the rest of this read is not parsed.
            if !sse_failed && sse.feed(payload, |_event| clock.on_event(now, rec)).is_err() {
                sse_failed = true;
            }
        });
        let consumed = match decoded {
            Err(_) => return self.fail(Failure::MalformedHttp),
            Ok(_) if sse_failed => return self.fail(Failure::EventTooLarge),
            Ok(consumed) => consumed,
        };
        if !self.body.is_done() {
            return Progress::NeedMore;
        }
        let end = self.end_of_body();
        // Bytes after the body would be an unrequested response: never reuse such a connection.
        let reusable = self.keep_alive && end == StreamEnd::Completed && consumed == input.len();
        self.phase = Phase::Over;
        Progress::Done { end, reusable }
    }

    /// The body ended by its framing or by EOF; an event left half-received is a premature end.
    fn end_of_body(&mut self) -> StreamEnd {
        if self.sse.finish() { StreamEnd::Failed(Failure::PrematureEof) } else { StreamEnd::Completed }
    }

    fn fail(&mut self, failure: Failure) -> Progress {
        self.phase = Phase::Over;
        Progress::Done { end: StreamEnd::Failed(failure), reusable: false }
    }
}
