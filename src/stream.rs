//! One stream's protocol state, sans IO: response head, body framing and SSE events in, timestamps and an outcome out.
//!
//! The worker owns the socket and the clock; it hands every read to [`StreamMachine::on_bytes`]
//! with the time the read returned, so all events that arrived in one read share that timestamp.
//! A compressed body goes body framing -> [`Decoder`] -> SSE parser, so its events are counted
//! after decoding and carry the time of the read that brought their compressed bytes.

use std::time::Instant;

use crate::http1::body::BodyDecoder;
use crate::http1::coding::{Coding, CodingError, Decoder};
use crate::http1::response::{self, Framing, Head, Location, MAX_HEAD_BYTES, NO_CONTENT};
use crate::llm::timeline::{ChunkVerdict, Timeline};
use crate::recorder::{Failure, Recorder, StreamEnd};
use crate::redirect;
use crate::sse::{Event, IdField, Parser};
use crate::units::micros_between;

/// What the worker does next with this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    /// The stream is over. `reusable`: the connection may carry the next request.
    Done {
        end: StreamEnd,
        reusable: bool,
    },
    /// A redirect to follow: its Location is [`StreamMachine::location`]. `reusable`: its answer was read whole and
    /// the connection may carry the next hop's request.
    Redirect {
        status: u16,
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
    max_gap_us: u64,
}

impl EventClock {
    fn on_event(&mut self, now: Instant, rec: &mut Recorder) {
        let h = &mut rec.histograms;
        if self.events == 0 {
            h.first_event_us.saturating_record(micros_between(self.request_start, now));
            // Before the first event `last_event_at` holds when the head came (`on_head`).
            h.head_wait_us.saturating_record(micros_between(self.last_event_at, now));
        } else {
            let gap_us = micros_between(self.last_event_at, now);
            h.gap_us.saturating_record(gap_us);
            self.max_gap_us = self.max_gap_us.max(gap_us);
            if gap_us > rec.stall_threshold_us {
                rec.stalls += 1;
            }
        }
        self.last_event_at = now;
        self.events += 1;
        rec.events += 1;
    }
}

/// Event ids seen by one virtual user, kept across its streams (reconnects). Boxed in the machine: only runs with
/// `--reconnect` or `--verify-seq` pay for more than its pointer.
#[derive(Debug, Default)]
struct EventIds {
    /// `--verify-seq`: count gaps and repeats in numeric ids.
    verify: bool,
    /// `--reconnect`: keep the last event ID string, for `Last-Event-ID`.
    resume: bool,
    /// A numeric id was seen, and `last` is the highest.
    seen: bool,
    last: u64,
    /// Events since the last numeric id whose own `id` was not a number: each may account for one skipped id.
    unnumbered: u64,
    /// `--reconnect`: the last event ID string as of the last event dispatched, whatever its form (a browser
    /// sends it as it is). Copied at each event into a buffer that keeps its capacity; never longer than
    /// `--max-event-size`, the parser's bound on an id.
    last_event_id: Vec<u8>,
}

impl EventIds {
    fn on_event(&mut self, event: &Event<'_>, rec: &mut Recorder) {
        if self.resume {
            self.last_event_id.clear();
            self.last_event_id.extend_from_slice(event.last_event_id);
        }
        if !self.verify {
            return;
        }
        match event.id_field {
            // No id of its own (or an empty one): nothing to check, the id it carries is inherited.
            IdField::Absent => {}
            IdField::Set if event.last_event_id.is_empty() => {}
            IdField::Set if let Some(id) = crate::units::parse_decimal(event.last_event_id) => {
                self.on_numeric_id(id, rec)
            }
            // An id that is not a decimal number, or one with NUL that the parser ignored: the server numbered
            // the event in a way this check cannot read.
            IdField::Set | IdField::Ignored => {
                rec.ids_not_numeric += 1;
                self.unnumbered += 1;
            }
        }
    }

    fn on_numeric_id(&mut self, id: u64, rec: &mut Recorder) {
        let last = self.last;
        if self.seen {
            if id > last {
                // Events that came in between with unreadable ids may have been the missing ones.
                rec.lost_events += (id - last - 1).saturating_sub(self.unnumbered);
            } else {
                rec.duplicate_events += 1;
            }
        }
        self.last = if self.seen { last.max(id) } else { id };
        self.seen = true;
        self.unnumbered = 0;
    }
}

/// Reusable per-virtual-user parsing state: buffers keep their capacity from stream to stream.
pub struct StreamMachine {
    phase: Phase,
    /// `--reconnect` or `--verify-seq`: the user's event ids. Boxed: other runs pay only the pointer.
    ids: Option<Box<EventIds>>,
    /// Head bytes, only while a head spans reads; never more than `MAX_HEAD_BYTES`. After a redirect, its Location
    /// (the buffer is idle then: the next hop's head starts it afresh).
    head: Vec<u8>,
    /// Redirects a stream follows (0: none, a redirect is an `http_3xx`), and those this stream has. Two bytes each,
    /// in what was padding: every user holds a machine.
    max_redirects: u16,
    redirects: u16,
    keep_alive: bool,
    body: BodyDecoder,
    sse: Parser,
    clock: EventClock,
    /// `--openai`: each event's data is a chunk of an answer. Boxed: only LLM runs pay for it.
    llm: Option<Box<Timeline>>,
    /// The decompressor of a body that arrived compressed, from its head to the stream's end.
    /// Boxed: a plain stream pays this pointer only.
    coding: Option<Box<Decoder>>,
}

impl StreamMachine {
    pub fn new(max_event_size_bytes: usize) -> StreamMachine {
        let now = Instant::now();
        StreamMachine {
            phase: Phase::Over,
            ids: None,
            head: Vec::new(),
            max_redirects: 0,
            redirects: 0,
            keep_alive: false,
            body: BodyDecoder::NoBody,
            sse: Parser::new(max_event_size_bytes),
            clock: EventClock { request_start: now, last_event_at: now, events: 0, max_gap_us: 0 },
            llm: None,
            coding: None,
        }
    }

    /// Reads every event as an LLM chunk (`--openai`), keeping up to `capture_limit` bytes of each answer.
    pub fn enable_llm(&mut self, capture_limit: usize) {
        self.llm = Some(Box::new(Timeline::new(capture_limit)));
    }

    pub fn llm(&mut self) -> Option<&mut Timeline> {
        self.llm.as_deref_mut()
    }

    /// A new request starts being written now.
    pub fn begin(&mut self, now: Instant) {
        if let Some(ids) = self.ids.as_deref_mut()
            && ids.resume
            && !self.sse.id_is_pending()
        {
            // A reconnect, to a browser: the last event ID string carries over into the new stream. It is the
            // parser's buffer, unless the stream ended inside an event whose `id` line came but was never
            // dispatched; then it is the copy taken at the last event. (Not exact in one corner: a block of only
            // `id:` after the last event, then an unfinished event with an `id` of its own.) A second `begin`
            // without bytes in between (a stale kept-alive connection's retry) keeps the same ID.
            ids.last_event_id.clear();
            ids.last_event_id.extend_from_slice(self.sse.last_event_id());
        }
        self.begin_hop();
        self.redirects = 0;
        self.clock = EventClock { request_start: now, last_event_at: now, events: 0, max_gap_us: 0 };
        if let Some(llm) = &mut self.llm {
            llm.begin(now);
        }
    }

    /// A redirect's next request starts: the response is parsed afresh, and the clock runs on from the stream's
    /// first request, so the hops count in its latencies as the user waits them. The last event ID stays, as an
    /// `EventSource`'s does across the redirects its fetch follows.
    pub fn begin_hop(&mut self) {
        self.phase = Phase::Head;
        self.head.clear();
        self.keep_alive = false;
        self.body = BodyDecoder::NoBody;
        self.coding = None;
        match self.ids.as_deref() {
            Some(ids) if ids.resume => self.sse.reset_with_last_event_id(&ids.last_event_id),
            _ => self.sse.reset(),
        }
    }

    /// Follows up to `max` redirects per stream (`--max-redirects`); 0, the default, follows none.
    pub fn follow_redirects(&mut self, max: u16) {
        self.max_redirects = max;
    }

    /// Redirects this stream has followed.
    pub fn redirects(&self) -> u16 {
        self.redirects
    }

    /// The Location of the redirect the last [`Progress::Redirect`] announced, until the next hop begins.
    pub fn location(&self) -> &[u8] {
        &self.head
    }

    /// Tracks event ids across this user's streams: with `verify`, counts lost and repeated numeric ids; with
    /// `resume`, keeps the last event ID for the next request. Allocates once, for the user's life.
    pub fn track_ids(&mut self, verify: bool, resume: bool) {
        self.ids = Some(Box::new(EventIds { verify, resume, ..EventIds::default() }));
    }

    /// The `Last-Event-ID` a browser would send with the request now starting (after `begin`): the last event
    /// ID string of this user's streams so far, if `track_ids` was asked to keep it and it is not empty.
    pub fn last_event_id(&self) -> Option<&[u8]> {
        let ids = self.ids.as_deref().filter(|ids| ids.resume)?;
        Some(&ids.last_event_id[..]).filter(|id| !id.is_empty())
    }

    pub fn request_start(&self) -> Instant {
        self.clock.request_start
    }

    pub fn events(&self) -> u64 {
        self.clock.events
    }

    /// The longest gap between two events of this stream, in µs (0 with fewer than two events).
    pub fn max_gap_us(&self) -> u64 {
        self.clock.max_gap_us
    }

    /// When the stream last moved: its last event, else its head, else its request.
    pub fn quiet_since(&self) -> Instant {
        self.clock.last_event_at
    }

    /// The stream's response head came (it is kept as `quiet_since` past the request's start: the head moves it).
    pub fn head_seen(&self) -> bool {
        self.clock.last_event_at > self.clock.request_start
    }

    /// The response head has been received (or the stream is over).
    pub fn head_received(&self) -> bool {
        self.phase != Phase::Head
    }

    /// The reconnection time the server asked for with `retry:`, if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.sse.retry_ms()
    }

    /// Bytes that one read returned at `now`.
    pub fn on_bytes(&mut self, now: Instant, input: &[u8], rec: &mut Recorder) -> Progress {
        debug_assert!(self.phase != Phase::Over, "bytes after the stream ended");
        rec.bytes += input.len() as u64;
        rec.read_started();
        let events_before = self.clock.events;
        let progress = match self.phase {
            Phase::Head => self.on_head_bytes(now, input, rec),
            Phase::Body => self.on_body_bytes(now, input, rec),
            Phase::Over => Progress::NeedMore,
        };
        rec.read_done(self.clock.events - events_before);
        progress
    }

    /// The peer closed the connection (read returned 0).
    pub fn on_eof(&mut self) -> StreamEnd {
        let end = match self.phase {
            Phase::Head => StreamEnd::Failed(Failure::PrematureEof),
            Phase::Body if self.body.on_eof().is_err() => StreamEnd::Failed(Failure::PrematureEof),
            Phase::Body => self.end_of_body(),
            Phase::Over => StreamEnd::Completed,
        };
        self.over();
        end
    }

    fn on_head_bytes(&mut self, now: Instant, input: &[u8], rec: &mut Recorder) -> Progress {
        if self.head.is_empty() {
            // Common case: the whole head arrived in one read, so parse it in place.
            return match response::parse_head(input) {
                Ok(Some(head)) => self.on_head(now, head, input, rec),
                Ok(None) => {
                    self.head.extend_from_slice(input);
                    Progress::NeedMore
                }
                Err(_) => self.fail(Failure::MalformedHttp),
            };
        }
        let room = MAX_HEAD_BYTES.saturating_sub(self.head.len());
        let taken = input.len().min(room);
        let before = self.head.len();
        self.head.extend_from_slice(&input[..taken]);
        if !response::may_end_head(&self.head, before) {
            // No blank line yet: parsing again from the start would only say "incomplete".
            return Progress::NeedMore;
        }
        match response::parse_head(&self.head) {
            Ok(Some(head)) => {
                // The head's tail and the body's first bytes are split between the buffer and
                // `input`; feed both, then hand the buffer back with its capacity.
                let buffered = std::mem::take(&mut self.head);
                let mut progress = self.on_head(now, head, &buffered, rec);
                if taken < input.len() {
                    progress = match progress {
                        Progress::NeedMore => self.on_more_after_head(now, &input[taken..], rec),
                        // The body ended inside the buffered bytes, yet the read held more.
                        Progress::Done { end, .. } => Progress::Done { end, reusable: false },
                        // A redirect's body goes on in `input`: not read, so the connection is not reused.
                        Progress::Redirect { status, .. } => Progress::Redirect { status, reusable: false },
                    };
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

    /// `head` was parsed from the start of `bytes`.
    fn on_head(&mut self, now: Instant, mut head: Head, bytes: &[u8], rec: &mut Recorder) -> Progress {
        let (mut head_bytes, mut rest) = bytes.split_at(head.head_len);
        // Interim responses (100 Continue, 103 Early Hints) precede the real one. Skipped in a
        // loop: one read may hold thousands of them.
        while (100..200).contains(&head.status) && head.status != 101 {
            match response::parse_head(rest) {
                Ok(Some(next)) => {
                    (head_bytes, rest) = rest.split_at(next.head_len);
                    head = next;
                }
                Ok(None) => {
                    // Below MAX_HEAD_BYTES, or parse_head would have said TooLarge.
                    self.head.extend_from_slice(rest);
                    return Progress::NeedMore;
                }
                Err(_) => return self.fail(Failure::MalformedHttp),
            }
        }
        if self.max_redirects > 0
            && redirect::is_redirect(head.status)
            && let Some(progress) = self.on_redirect(head, head_bytes, rest)
        {
            return progress;
        }
        rec.histograms.headers_us.saturating_record(micros_between(self.clock.request_start, now));
        // No event yet: the first one's wait behind the head is timed from here (`EventClock::on_event`).
        self.clock.last_event_at = now;
        // 204 No Content has no stream to read, and tells an EventSource to stop reconnecting: a failure, whatever
        // its headers say (the user's loop stops reconnecting on it).
        if !(200..300).contains(&head.status) || head.status == NO_CONTENT {
            return self.fail(Failure::HttpStatus(head.status));
        }
        if !head.is_event_stream {
            return self.fail(Failure::WrongContentType);
        }
        let compressed = &mut rec.compressed;
        let count = match head.coding {
            Coding::Identity => None,
            Coding::Unsupported => return self.fail(Failure::UnsupportedEncoding),
            Coding::Gzip => Some(&mut compressed.gzip),
            Coding::Deflate => Some(&mut compressed.deflate),
            Coding::Br => Some(&mut compressed.br),
        };
        if let Some(count) = count {
            *count += 1;
            // Allocated per compressed stream (never per event), freed when it ends.
            self.coding = Decoder::new(head.coding);
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
        let mut llm_error = false;
        let mut coding_failed = false;
        let sse = &mut self.sse;
        let clock = &mut self.clock;
        let mut ids = self.ids.as_deref_mut();
        let mut llm = self.llm.as_deref_mut().zip(rec.llm.take());
        // The body's bytes as the server wrote them, decoded if they arrived compressed.
        let mut on_plain = |plain: &[u8]| {
            let on_event = |event: crate::sse::Event<'_>| {
                clock.on_event(now, rec);
                if rec.delivery.is_some() {
                    let id = if event.id_field == IdField::Set { event.last_event_id } else { &[] };
                    rec.on_delivered(now, event.data, id);
                }
                if let Some(ids) = &mut ids {
                    ids.on_event(&event, rec);
                }
                if let Some((timeline, llm_rec)) = &mut llm {
                    llm_error |= timeline.on_data(now, event.data, llm_rec) == ChunkVerdict::Error;
                }
            };
            // After an SSE error the stream is over; the rest of this read is not parsed.
            if !sse_failed && sse.feed(plain, on_event).is_err() {
                sse_failed = true;
            }
        };
        let coding = &mut self.coding;
        let decoded = self.body.decode(input, |payload| match coding.as_deref_mut() {
            None => on_plain(payload),
            // After a decoding error the stream is over; the rest of this read is not decoded.
            Some(decoder) if !coding_failed => coding_failed = decoder.decode(payload, &mut on_plain).is_err(),
            Some(_) => {}
        });
        if let Some((_, llm_rec)) = llm {
            rec.llm = Some(llm_rec);
        }
        let consumed = match decoded {
            Err(_) => return self.fail(Failure::MalformedHttp),
            Ok(_) if coding_failed => return self.fail(Failure::BadEncoding),
            Ok(_) if sse_failed => return self.fail(Failure::EventTooLarge),
            Ok(_) if llm_error => return self.fail(Failure::LlmError),
            Ok(consumed) => consumed,
        };
        if !self.body.is_done() {
            return Progress::NeedMore;
        }
        let end = self.end_of_body();
        // Bytes after the body would be an unrequested response: never reuse such a connection.
        let reusable = self.keep_alive && end == StreamEnd::Completed && consumed == input.len();
        self.over();
        Progress::Done { end, reusable }
    }

    /// A redirect head (`head_bytes`, followed by `rest` in the same read): its Location kept for the worker, or the
    /// stream's end when it cannot be followed; None without a Location (Fetch then hands the 3xx back as the
    /// answer). Its `headers` latency is the final answer's, not this one's.
    fn on_redirect(&mut self, head: Head, head_bytes: &[u8], rest: &[u8]) -> Option<Progress> {
        let location = match head.location {
            Location::At { start, end } => &head_bytes[start..end],
            Location::Absent => return None,
            Location::Several => return Some(self.fail(Failure::BadRedirect)),
        };
        if self.redirects >= self.max_redirects {
            return Some(self.fail(Failure::TooManyRedirects));
        }
        self.redirects += 1;
        self.head.clear();
        self.head.extend_from_slice(location);
        self.phase = Phase::Over;
        // Reusable only when this read held the whole (empty or Content-Length) body and nothing after it.
        let whole = match head.framing {
            Framing::NoBody => rest.is_empty(),
            Framing::Length(length) => rest.len() as u64 == length,
            Framing::Chunked | Framing::Close => false,
        };
        Some(Progress::Redirect { status: head.status, reusable: head.keep_alive && whole })
    }

    /// The body ended by its framing or by EOF; an event left half-received, or a compressed
    /// stream that had not ended, is a premature end.
    fn end_of_body(&mut self) -> StreamEnd {
        match self.coding.as_deref().map_or(Ok(()), Decoder::finish) {
            Err(CodingError::Corrupt) => StreamEnd::Failed(Failure::BadEncoding),
            Err(CodingError::Truncated) => StreamEnd::Failed(Failure::PrematureEof),
            Ok(()) if self.sse.finish() => StreamEnd::Failed(Failure::PrematureEof),
            Ok(()) => StreamEnd::Completed,
        }
    }

    fn fail(&mut self, failure: Failure) -> Progress {
        self.over();
        Progress::Done { end: StreamEnd::Failed(failure), reusable: false }
    }

    /// The stream is over; a decompressor's memory goes back now, not at the user's next stream.
    fn over(&mut self) {
        self.phase = Phase::Over;
        self.coding = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::recorder::DeliveryClock;

    const SSE_CHUNKED: &str =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

    /// Feeds `response` in reads split at `splits`, then EOF if the stream still wants bytes.
    /// Returns (events, end, reusable, reads used).
    fn drive(response: &[u8], splits: &[usize]) -> (u64, StreamEnd, bool, Recorder) {
        let mut rec = Recorder::new();
        let mut machine = StreamMachine::new(1024);
        let t0 = Instant::now();
        machine.begin(t0);
        let mut bounds = vec![0];
        bounds.extend(splits.iter().copied().filter(|&s| s > 0 && s < response.len()));
        bounds.push(response.len());
        for (i, pair) in bounds.windows(2).enumerate() {
            let now = t0 + Duration::from_millis(i as u64 + 1);
            if let Progress::Done { end, reusable } = machine.on_bytes(now, &response[pair[0]..pair[1]], &mut rec) {
                return (machine.events(), end, reusable, rec);
            }
        }
        let end = machine.on_eof();
        (machine.events(), end, false, rec)
    }

    /// Every single split point and byte-by-byte feeding give the one-shot result.
    fn check(response: &str, events: u64, end: StreamEnd, reusable: bool) {
        check_bytes(response.as_bytes(), events, end, reusable);
    }

    fn check_bytes(bytes: &[u8], events: u64, end: StreamEnd, reusable: bool) {
        let response = String::from_utf8_lossy(bytes);
        let whole = drive(bytes, &[]);
        assert_eq!((whole.0, whole.1, whole.2), (events, end, reusable), "one shot: {response:?}");
        assert_eq!(whole.3.bytes, bytes.len() as u64);
        for split in 1..bytes.len() {
            let got = drive(bytes, &[split]);
            assert_eq!((got.0, got.1, got.2), (events, end, reusable), "split at {split}: {response:?}");
        }
        let every: Vec<usize> = (1..bytes.len()).collect();
        let got = drive(bytes, &every);
        assert_eq!((got.0, got.1, got.2), (events, end, reusable), "byte by byte: {response:?}");
    }

    #[test]
    fn chunked_stream_completes_and_is_reusable() {
        let response = format!("{SSE_CHUNKED}9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n");
        check(&response, 2, StreamEnd::Completed, true);
    }

    #[test]
    fn connection_close_or_extra_bytes_forbid_reuse() {
        let close = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\nContent-Length: 9\r\n\r\ndata: a\n\n";
        check(close, 1, StreamEnd::Completed, false);
        let extra = format!("{SSE_CHUNKED}0\r\n\r\nHTTP/1.1 200 OK\r\n");
        assert!(!drive(extra.as_bytes(), &[]).2, "bytes after the body");
    }

    #[test]
    fn interim_heads_are_skipped() {
        let response = format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n{SSE_CHUNKED}9\r\ndata: a\n\n\r\n0\r\n\r\n"
        );
        check(&response, 1, StreamEnd::Completed, true);
    }

    #[test]
    fn failures_are_classified_at_every_split() {
        check("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 0, StreamEnd::Failed(Failure::HttpStatus(503)), false);
        // 204 is a 2xx, but no stream: not even an SSE Content-Type makes it one.
        let no_content = StreamEnd::Failed(Failure::HttpStatus(204));
        check("HTTP/1.1 204 No Content\r\n\r\n", 0, no_content, false);
        check("HTTP/1.1 204 No Content\r\nContent-Type: text/event-stream\r\n\r\n", 0, no_content, false);
        assert!(no_content.stops_reconnecting());
        check(
            "HTTP/1.1 205 Reset Content\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\n",
            1,
            StreamEnd::Completed,
            false,
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
            0,
            StreamEnd::Failed(Failure::WrongContentType),
            false,
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\ndata: b",
            1,
            StreamEnd::Failed(Failure::PrematureEof),
            false,
        );
        check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\n", 1, StreamEnd::Completed, false);
        check(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 30\r\n\r\ndata: a\n\n",
            1,
            StreamEnd::Failed(Failure::PrematureEof),
            false,
        );
        check(&format!("{SSE_CHUNKED}9\r\ndata: a\n\n\r\n"), 1, StreamEnd::Failed(Failure::PrematureEof), false);
        check(&format!("{SSE_CHUNKED}g\r\n"), 0, StreamEnd::Failed(Failure::MalformedHttp), false);
        check("HTTP/1.1 200 OK\r\n", 0, StreamEnd::Failed(Failure::PrematureEof), false);
        check("HTTP/9 what\r\n\r\n", 0, StreamEnd::Failed(Failure::MalformedHttp), false);
        // Complete by its framing, but the last event never got its blank line.
        check(&format!("{SSE_CHUNKED}7\r\ndata: a\r\n0\r\n\r\n"), 0, StreamEnd::Failed(Failure::PrematureEof), false);
    }

    #[test]
    fn thousands_of_interim_heads_in_one_read_are_skipped_without_recursion() {
        let response = format!("{}{SSE_CHUNKED}9\r\ndata: a\n\n\r\n0\r\n\r\n", "HTTP/1.1 100 C\r\n\r\n".repeat(4000));
        let (events, end, reusable, _) = drive(response.as_bytes(), &[]);
        assert_eq!((events, end, reusable), (1, StreamEnd::Completed, true));
    }

    /// Feeds `response` in two reads split at `split` (none when 0), to the first answer, else EOF.
    fn first_progress(machine: &mut StreamMachine, response: &[u8], split: usize, rec: &mut Recorder) -> Progress {
        let now = Instant::now();
        let parts = if split == 0 { vec![response] } else { vec![&response[..split], &response[split..]] };
        for part in parts {
            let progress = machine.on_bytes(now, part, rec);
            if progress != Progress::NeedMore {
                return progress;
            }
        }
        Progress::Done { end: machine.on_eof(), reusable: false }
    }

    /// A machine that follows up to `max` redirects, its stream begun.
    fn following(max: u16) -> StreamMachine {
        let mut machine = StreamMachine::new(1024);
        machine.follow_redirects(max);
        machine.begin(Instant::now());
        machine
    }

    #[test]
    fn a_redirect_is_announced_with_its_location_at_every_split() {
        let interim = "HTTP/1.1 100 Continue\r\n\r\n";
        let moved = "HTTP/1.1 307 Temporary Redirect\r\nLocation:  /next?a=1 \r\nContent-Length: 5\r\n\r\n";
        for response in [format!("{moved}moved"), format!("{interim}{moved}moved")] {
            let head_end = response.len() - 5;
            for split in 0..response.len() {
                let mut rec = Recorder::new();
                let mut machine = following(20);
                let progress = first_progress(&mut machine, response.as_bytes(), split, &mut rec);
                // Reusable when the one read that completed the head also held the whole body.
                let whole = split == 0 || split < head_end;
                assert_eq!(progress, Progress::Redirect { status: 307, reusable: whole }, "split at {split}");
                assert_eq!((machine.location(), machine.redirects()), (&b"/next?a=1"[..], 1), "split at {split}");
                assert_eq!(rec.histograms.headers_us.len(), 0, "a redirect's head is not the answer's");
            }
        }
        let closing = "HTTP/1.1 302 Found\r\nLocation: /n\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let progress = first_progress(&mut following(20), closing.as_bytes(), 0, &mut Recorder::new());
        assert_eq!(progress, Progress::Redirect { status: 302, reusable: false });
    }

    #[test]
    fn redirects_that_are_not_followed() {
        let found = |fields: &str| format!("HTTP/1.1 302 Found\r\n{fields}Content-Length: 0\r\n\r\n");
        let fails = |max: u16, response: String, failure: Failure| {
            let mut rec = Recorder::new();
            let progress = first_progress(&mut following(max), response.as_bytes(), 0, &mut rec);
            assert_eq!(progress, Progress::Done { end: StreamEnd::Failed(failure), reusable: false }, "{response:?}");
            rec
        };
        // Not following (--max-redirects 0), or no Location: the 3xx is the answer, timed as one.
        let rec = fails(0, found("Location: /n\r\n"), Failure::HttpStatus(302));
        assert_eq!(rec.histograms.headers_us.len(), 1);
        fails(20, found(""), Failure::HttpStatus(302));
        fails(20, found("Location: /a\r\nLocation: /b\r\n"), Failure::BadRedirect);
        // 300 and 304 do not redirect.
        let multiple = "HTTP/1.1 300 Multiple Choices\r\nLocation: /n\r\nContent-Length: 0\r\n\r\n".to_string();
        fails(20, multiple, Failure::HttpStatus(300));
    }

    /// The hops share the stream's clock: the answer's head is timed from the first request, once; the count of
    /// hops is the stream's, and a new stream starts it again.
    #[test]
    fn hops_run_on_the_streams_clock_up_to_the_limit() {
        let mut rec = Recorder::new();
        let mut machine = StreamMachine::new(1024);
        machine.follow_redirects(2);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let moved = b"HTTP/1.1 302 Found\r\nLocation: /n\r\nContent-Length: 0\r\n\r\n";
        machine.begin(t0);
        for hop in 1..=2 {
            assert!(matches!(machine.on_bytes(ms(hop), moved, &mut rec), Progress::Redirect { status: 302, .. }));
            machine.begin_hop();
        }
        let progress = machine.on_bytes(ms(3), moved, &mut rec);
        assert_eq!(progress, Progress::Done { end: StreamEnd::Failed(Failure::TooManyRedirects), reusable: false });
        assert_eq!((machine.redirects(), rec.histograms.headers_us.len()), (2, 0));

        machine.begin(ms(10));
        assert!(matches!(machine.on_bytes(ms(11), moved, &mut rec), Progress::Redirect { .. }));
        machine.begin_hop();
        let answer = format!("{SSE_CHUNKED}9\r\ndata: a\n\n\r\n0\r\n\r\n");
        let progress = machine.on_bytes(ms(12), answer.as_bytes(), &mut rec);
        assert_eq!(progress, Progress::Done { end: StreamEnd::Completed, reusable: true });
        assert_eq!(machine.redirects(), 1);
        let h = &rec.histograms;
        assert_eq!((h.headers_us.len(), h.headers_us.max(), h.first_event_us.max()), (1, 2_000, 2_000));
    }

    #[test]
    fn oversized_event_fails_the_stream() {
        let big = "x".repeat(2000);
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {big}\n\n");
        let got = drive(response.as_bytes(), &[]);
        assert_eq!(got.1, StreamEnd::Failed(Failure::EventTooLarge));
    }

    #[test]
    fn oversized_head_is_malformed_not_buffered() {
        // 70 fields of 1,011 bytes: 70 KB, over the 64 KiB bound (and under the 256-field one).
        let filler = format!("X-Filler: {}\r\n", "y".repeat(1000));
        let response = format!("HTTP/1.1 200 OK\r\n{}\r\n", filler.repeat(70));
        let splits: Vec<usize> = (1..response.len()).step_by(512).collect();
        let got = drive(response.as_bytes(), &splits);
        assert_eq!(got.1, StreamEnd::Failed(Failure::MalformedHttp));
        // 255 fields and a Content-Type (28 KB): at the field bound, in reads of 512 bytes.
        let small = format!("X-Filler: {}\r\n", "y".repeat(100));
        let fields =
            format!("HTTP/1.1 200 OK\r\n{}Content-Type: text/event-stream\r\n\r\ndata: a\n\n", small.repeat(255));
        let splits: Vec<usize> = (1..fields.len()).step_by(512).collect();
        let (events, end, _, _) = drive(fields.as_bytes(), &splits);
        assert_eq!((events, end), (1, StreamEnd::Completed));
    }

    #[test]
    fn a_head_that_spans_reads_is_parsed_once_its_blank_line_arrives() {
        let mut rec = Recorder::new();
        let mut machine = StreamMachine::new(1024);
        let t0 = Instant::now();
        machine.begin(t0);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
        for (i, byte) in head.as_bytes().iter().enumerate() {
            assert_eq!(machine.on_bytes(t0, std::slice::from_ref(byte), &mut rec), Progress::NeedMore);
            assert_eq!(machine.head_received(), i + 1 == head.len(), "byte {i}");
        }
        // A syntax error is found when the blank line arrives.
        machine.begin(t0);
        machine.on_bytes(t0, b"HTTP/1.1 200 OK\r\n", &mut rec);
        assert_eq!(machine.on_bytes(t0, b"Bad Name: x\r\n", &mut rec), Progress::NeedMore);
        let end = machine.on_bytes(t0, b"\r\n", &mut rec);
        assert_eq!(end, Progress::Done { end: StreamEnd::Failed(Failure::MalformedHttp), reusable: false });
    }

    /// `events` compressed with a flush after each, as `coding` ("gzip", "deflate", "br").
    fn compress(coding: &str, events: &[&str]) -> Vec<u8> {
        use flate2::Compression;
        use std::io::Write;
        fn run<W: Write>(mut w: W, events: &[&str]) -> W {
            for event in events {
                w.write_all(event.as_bytes()).unwrap();
                w.flush().unwrap();
            }
            w
        }
        match coding {
            "gzip" => run(flate2::write::GzEncoder::new(Vec::new(), Compression::fast()), events).finish().unwrap(),
            "deflate" => {
                run(flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast()), events).finish().unwrap()
            }
            _ => run(brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22), events).into_inner(),
        }
    }

    /// A response whose head is `head` (without its blank line) and whose body is `body` in one chunk.
    fn chunked_response(head: &str, body: &[u8]) -> Vec<u8> {
        let mut response = format!("{head}\r\n\r\n{:x}\r\n", body.len()).into_bytes();
        response.extend_from_slice(body);
        response.extend_from_slice(b"\r\n0\r\n\r\n");
        response
    }

    const EVENTS: [&str; 3] = ["id: 1\ndata: a\n\n", "data: b\n\n", "data: c\n\n"];
    const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream";

    #[test]
    fn compressed_bodies_are_decoded_at_every_split() {
        for coding in ["gzip", "deflate", "br"] {
            let body = compress(coding, &EVENTS);
            let chunked = chunked_response(
                &format!("{SSE_HEAD}\r\nContent-Encoding: {coding}\r\nTransfer-Encoding: chunked"),
                &body,
            );
            check_bytes(&chunked, 3, StreamEnd::Completed, true);
            let transfer = chunked_response(&format!("{SSE_HEAD}\r\nTransfer-Encoding: {coding}, chunked"), &body);
            check_bytes(&transfer, 3, StreamEnd::Completed, true);
            let mut length =
                format!("{SSE_HEAD}\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
            length.extend_from_slice(&body);
            check_bytes(&length, 3, StreamEnd::Completed, true);
            let mut close = format!("{SSE_HEAD}\r\nContent-Encoding: {coding}\r\n\r\n").into_bytes();
            close.extend_from_slice(&body);
            check_bytes(&close, 3, StreamEnd::Completed, false);
            // Cut before the compressed stream's end: the events that arrived count, the stream is cut short.
            close.truncate(close.len() - 1);
            check_bytes(&close, 3, StreamEnd::Failed(Failure::PrematureEof), false);
        }
    }

    #[test]
    fn compressed_streams_are_counted_once_by_coding_and_freed_at_the_end() {
        let mut rec = Recorder::new();
        let mut machine = StreamMachine::new(1024);
        for (coding, events) in [("gzip", 1), ("br", 2), ("deflate", 3), ("gzip", 1)] {
            machine.begin(Instant::now());
            let body = compress(coding, &EVENTS[..events]);
            let head = format!("{SSE_HEAD}\r\nContent-Encoding: {coding}\r\nTransfer-Encoding: chunked");
            let response = chunked_response(&head, &body);
            // The head and the body's first bytes, then the rest.
            let (head_part, body_part) = response.split_at(head.len() + 10);
            assert_eq!(machine.on_bytes(Instant::now(), head_part, &mut rec), Progress::NeedMore);
            assert!(machine.coding.is_some(), "{coding}: a decoder while the body arrives");
            let end = machine.on_bytes(Instant::now(), body_part, &mut rec);
            assert_eq!(end, Progress::Done { end: StreamEnd::Completed, reusable: true }, "{coding}");
            assert_eq!(machine.events(), events as u64);
            assert!(machine.coding.is_none(), "{coding}: freed when the stream ended");
        }
        assert_eq!(rec.compressed, crate::recorder::CompressedStreams { gzip: 2, deflate: 1, br: 1 });
        machine.begin(Instant::now());
        machine.on_bytes(Instant::now(), format!("{SSE_HEAD}\r\n\r\n").as_bytes(), &mut rec);
        assert!(machine.coding.is_none(), "a plain stream has none");
    }

    #[test]
    fn bad_and_unsupported_codings_fail_at_every_split() {
        let bad = chunked_response(
            &format!("{SSE_HEAD}\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked"),
            b"\x1f\x8c\x08",
        );
        check_bytes(&bad, 0, StreamEnd::Failed(Failure::BadEncoding), false);
        // Events decoded before the corruption count; the stream fails when it is reached.
        let mut body = compress("deflate", &EVENTS);
        *body.last_mut().unwrap() ^= 1;
        let mut bad_adler = format!("{SSE_HEAD}\r\nContent-Encoding: deflate\r\n\r\n").into_bytes();
        bad_adler.extend_from_slice(&body);
        check_bytes(&bad_adler, 3, StreamEnd::Failed(Failure::BadEncoding), false);
        for coding in ["Content-Encoding: zstd", "Content-Encoding: gzip, gzip", "Transfer-Encoding: chunked, gzip"] {
            let response = format!("{SSE_HEAD}\r\n{coding}\r\n\r\ndata: a\n\n");
            check(&response, 0, StreamEnd::Failed(Failure::UnsupportedEncoding), false);
        }
        // An empty body is a complete one, compressed or not.
        let empty = format!("{SSE_HEAD}\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n");
        check(&empty, 0, StreamEnd::Completed, false);
    }

    #[test]
    fn a_folded_head_is_read_like_an_unfolded_one() {
        let folded =
            "HTTP/1.1 200 OK\r\nContent-Type:\r\n text/event-stream\r\nTransfer-Encoding: gzip,\r\n\tchunked\r\n";
        let body = compress("gzip", &EVENTS);
        check_bytes(&chunked_response(folded.trim_end(), &body), 3, StreamEnd::Completed, true);
    }

    #[test]
    fn timings_come_from_the_read_that_completed_each_event() {
        // Read 1 (t0+1ms): head; read 2 (t0+2ms): first event; read 3 (t0+3ms): two more events.
        let head = SSE_CHUNKED.len();
        let first = "9\r\ndata: a\n\n\r\n".len();
        let response = format!("{SSE_CHUNKED}9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n9\r\ndata: c\n\n\r\n");
        let (events, _, _, rec) = drive(response.as_bytes(), &[head, head + first]);
        assert_eq!(events, 3);
        let h = &rec.histograms;
        assert_eq!(h.headers_us.max(), 1000);
        assert_eq!(h.first_event_us.max(), 2000);
        assert_eq!((h.gap_us.len(), h.gap_us.min(), h.gap_us.max()), (2, 0, 1000));
    }

    #[test]
    fn gaps_over_the_stall_threshold_are_stalls() {
        let mut rec = Recorder::new();
        rec.stall_threshold_us = 1_500;
        let mut machine = StreamMachine::new(1024);
        let t0 = Instant::now();
        machine.begin(t0);
        let event = "9\r\ndata: a\n\n\r\n";
        machine.on_bytes(t0, SSE_CHUNKED.as_bytes(), &mut rec);
        for ms in [1, 2, 5, 6, 10] {
            machine.on_bytes(t0 + Duration::from_millis(ms), event.as_bytes(), &mut rec);
        }
        // Gaps 1, 3, 1, 4 ms: two are over 1.5 ms.
        assert_eq!((rec.stalls, machine.max_gap_us(), machine.events()), (2, 4_000, 5));
    }

    #[test]
    fn the_first_events_wait_behind_the_head_and_the_events_of_each_read_are_counted() {
        let mut rec = Recorder::new();
        let mut machine = StreamMachine::new(1024);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        machine.begin(t0);
        machine.on_bytes(ms(5), SSE_CHUNKED.as_bytes(), &mut rec);
        let event = "9\r\ndata: a\n\n\r\n";
        machine.on_bytes(ms(35), event.as_bytes(), &mut rec);
        machine.on_bytes(ms(40), event.repeat(3).as_bytes(), &mut rec);
        machine.on_bytes(ms(41), "9\r\ndata: ".as_bytes(), &mut rec);
        let h = &rec.histograms;
        assert_eq!((h.head_wait_us.len(), h.head_wait_us.max() / 1_000), (1, 30), "head at 5 ms, first event at 35");
        assert_eq!((rec.reads_with_events, rec.events_in_shared_reads, rec.events), (2, 3, 4));
    }

    #[test]
    fn with_send_times_each_event_has_a_lag_and_each_read_a_spread() {
        let send_time = crate::send_time::SendTime::parse("stamp", "auto").unwrap();
        let mut rec = Recorder::new();
        let t0 = Instant::now();
        let t0_unix_us = 1_764_000_000_000_000;
        rec.delivery = Some(Box::new(DeliveryClock::new(std::sync::Arc::new(send_time), t0, t0_unix_us)));
        let mut machine = StreamMachine::new(1024);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        machine.begin(t0);
        machine.on_bytes(t0, SSE_CHUNKED.as_bytes(), &mut rec);
        let event = |sent_ms: u64| {
            let data = format!("data: {} pad\n\n", t0_unix_us + sent_ms * 1_000);
            format!("{:x}\r\n{data}\r\n", data.len())
        };
        // Sent at 0, 10 and 20 ms, read together at 30 ms; then one sent at 40 read at 41; then one without a stamp;
        // then one "sent" after its receipt.
        machine.on_bytes(ms(30), [event(0), event(10), event(20)].concat().as_bytes(), &mut rec);
        machine.on_bytes(ms(41), event(40).as_bytes(), &mut rec);
        machine.on_bytes(ms(50), "f\r\ndata: no stamp\n\r\n".as_bytes(), &mut rec);
        machine.on_bytes(ms(50), "1\r\n\n\r\n".as_bytes(), &mut rec);
        machine.on_bytes(ms(60), event(70).as_bytes(), &mut rec);
        let h = &rec.histograms;
        let lags: Vec<u64> = h.delivery_lag_us.iter_recorded().map(|v| v.value_iterated_to() / 1_000).collect();
        assert_eq!(lags, [0, 1, 10, 20, 30], "lags of 30, 20, 10, 1 ms, and 0 for the one from the future");
        assert_eq!((rec.negative_lag, rec.send_time_missing), (1, 1));
        assert_eq!((h.read_spread_us.len(), h.read_spread_us.max() / 1_000), (1, 20), "one read of three, 20 ms apart");
    }

    /// Feeds `body` as one stream (a close-delimited SSE response) to `machine`, then ends it by EOF.
    fn stream(machine: &mut StreamMachine, rec: &mut Recorder, body: &[u8]) {
        let now = Instant::now();
        machine.begin(now);
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
        assert_eq!(machine.on_bytes(now, head, rec), Progress::NeedMore);
        // Byte by byte: the ids must not depend on how reads split the stream.
        for byte in body.chunks(1) {
            assert_eq!(machine.on_bytes(now, byte, rec), Progress::NeedMore);
        }
        machine.on_eof();
    }

    /// The bodies of one user's streams, in turn.
    type Bodies = &'static [&'static [u8]];

    /// The Last-Event-ID each reconnect sends after each stream, in turn.
    fn resume_points(streams: Bodies) -> Vec<Option<String>> {
        let (mut machine, mut rec) = (StreamMachine::new(64), Recorder::new());
        machine.track_ids(false, true);
        let mut out = Vec::new();
        for body in streams {
            stream(&mut machine, &mut rec, body);
            machine.begin(Instant::now());
            out.push(machine.last_event_id().map(|id| String::from_utf8(id.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn reconnects_resume_from_the_last_event_id_string_as_a_browser_keeps_it() {
        let some = |id: &str| Some(id.to_string());
        let cases: &[(Bodies, Vec<Option<String>>)] = &[
            // Any id, as it is; the one of the last event dispatched, not the one of an event cut short.
            (&[b"id: 1700000000000-0\ndata: a\n\nid: 1700000000000-1\ndata: b"], vec![some("1700000000000-0")]),
            // Kept across events without an id, and across reconnects.
            (&[b"id: x\ndata: a\n\ndata: b\n\n", b"data: c\n\n", b""], vec![some("x"), some("x"), some("x")]),
            // A block with an id and no data sets it too; an id with NUL is ignored.
            (&[b"id: x\ndata: a\n\nid: y\n\n", b"id: z\x00\ndata: b\n\n"], vec![some("y"), some("y")]),
            // An empty id clears it: no header.
            (&[b"id: x\ndata: a\n\n", b"id\ndata: b\n\n", b"id: y\n\n"], vec![some("x"), None, some("y")]),
            (&[b"data: a\n\n"], vec![None]),
            // Cut inside an event after a stream that gave an id: the id carried over is still the one.
            (&[b"id: x\ndata: a\n\n", b"id: y\ndata: b"], vec![some("x"), some("x")]),
        ];
        for (streams, expected) in cases {
            assert_eq!(&resume_points(streams), expected, "{streams:?}");
        }
    }

    #[test]
    fn a_second_begin_without_bytes_keeps_the_last_event_id() {
        // A stale kept-alive connection: the request is begun again on a new one.
        let (mut machine, mut rec) = (StreamMachine::new(64), Recorder::new());
        machine.track_ids(false, true);
        stream(&mut machine, &mut rec, b"id: a-1\ndata: a\n\nid: a-2\ndata: b");
        for _ in 0..3 {
            machine.begin(Instant::now());
            assert_eq!(machine.last_event_id(), Some(&b"a-1"[..]));
        }
    }

    #[test]
    fn without_reconnect_no_last_event_id_is_kept() {
        for verify in [false, true] {
            let (mut machine, mut rec) = (StreamMachine::new(64), Recorder::new());
            machine.track_ids(verify, false);
            stream(&mut machine, &mut rec, b"id: 5\ndata: a\n\n");
            machine.begin(Instant::now());
            assert_eq!(machine.last_event_id(), None);
        }
        let mut machine = StreamMachine::new(64);
        stream(&mut machine, &mut Recorder::new(), b"id: 5\ndata: a\n\n");
        assert_eq!(machine.last_event_id(), None);
    }

    /// `--verify-seq` over streams of one user: (lost, duplicates, ids not numeric).
    fn verify(streams: Bodies) -> (u64, u64, u64) {
        let (mut machine, mut rec) = (StreamMachine::new(64), Recorder::new());
        machine.track_ids(true, true);
        for body in streams {
            stream(&mut machine, &mut rec, body);
        }
        (rec.lost_events, rec.duplicate_events, rec.ids_not_numeric)
    }

    #[test]
    fn verify_seq_checks_numeric_ids_and_counts_the_others() {
        let cases: &[(Bodies, (u64, u64, u64))] = &[
            (&[b"id: 1\ndata\n\nid: 2\ndata\n\nid: 5\ndata\n\nid: 5\ndata\n\n"], (2, 1, 0)),
            // Across reconnects.
            (&[b"id: 1\ndata\n\nid: 2\ndata\n\n", b"id: 2\ndata\n\nid: 4\ndata\n\n"], (1, 1, 0)),
            (&[b"id: 1700000000000-0\ndata\n\nid: 1700000000000-1\ndata\n\n"], (0, 0, 2)),
            // 20 digits do not fit: not a number.
            (&[b"id: 1\ndata\n\nid: 99999999999999999999\ndata\n\n"], (0, 0, 1)),
            // An id with NUL is ignored by the parser: the event is neither a repeat of 2 nor is 3 lost.
            (&[b"id: 1\ndata\n\nid: 2\ndata\n\nid: 3\x00\ndata\n\nid: 4\ndata\n\n"], (0, 0, 1)),
            // An unreadable id stands in for one missing number, not more.
            (&[b"id: 1\ndata\n\nid: x\ndata\n\nid: 4\ndata\n\n"], (1, 0, 1)),
            // Events without an id of their own (or with an empty one) inherit one: no repeat, nothing to check.
            (&[b"id: 1\ndata\n\ndata\n\nid:\ndata\n\nid: 2\ndata\n\n", b"data\n\n"], (0, 0, 0)),
        ];
        for (streams, expected) in cases {
            assert_eq!(verify(streams), *expected, "{streams:?}");
        }
    }
}
