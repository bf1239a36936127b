//! One stream attempt as a phase machine (`Attempt`: connect, TLS handshake, request, response), advanced without
//! blocking as far as it can go: to its next readiness wait (`Interest`) or to the stream's end (`Next`).

use std::cell::RefCell;
use std::time::Instant;

use monoio::net::TcpStream;

use crate::recorder::{Failure, StreamEnd};
use crate::redirect::Destination;
use crate::stream::{Progress, StreamMachine};
use crate::sys;
use crate::template::{Journey, TargetRequest};
use crate::units::micros_between;
use crate::wire::{self, Step, Want};
use crate::worker::core::{Conn, Core, CoreCtx, Expiry, Slot, raw_fd, tls_of};
use crate::worker::hop::StreamId;

/// Reads a stream may do before its task gives the others (and the core's timers) a turn: one fast stream must
/// not starve its core. Counted across readiness waits that did not suspend the task: on epoll, a wait on a socket
/// with data waiting completes at once.
pub(crate) const READS_PER_WAKE: u8 = 16;

/// What a stream attempt waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    /// Readable, after a read that found the socket empty (EAGAIN, or a read shorter than the buffer) with no await
    /// since: readiness left from before that read is stale, so the wait need not ask the socket again (on epoll,
    /// the `poll(2)` per event that a plain `Read` wait makes).
    Drained,
    Write,
    /// Writable, or readable: the request is going out, and the server may answer before it has read all of it
    /// (RFC 9112 §9.5: a 413 or a 401 at once, then no more reading). Waiting for writability alone would wait
    /// forever for a server that stopped reading, with its answer unread.
    ReadOrWrite,
    /// Nothing to wait for, but the others get a turn: the stream spent its READS_PER_WAKE reads (with TLS
    /// perhaps holding decrypted bytes the socket no longer has).
    Yield,
}

/// What a pass of reads came to.
enum Taken {
    /// The stream ended, or the attempt moved on (a retry on a new connection): the phase's step.
    Step(Option<Next>),
    /// The socket has nothing more for now.
    Drained,
    /// The read budget is spent, the last read full: more may be waiting, but the others get a turn first.
    Budget,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Wait(Interest),
    Done(StreamEnd),
}

/// Where one stream attempt stands between two waits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// Open a new connection.
    Connect,
    /// A non-blocking connect started at `started` waits for its handshake.
    Connecting { started: Instant },
    /// `https://`: the TLS handshake, from `started` (the TCP connect's end).
    Handshake { started: Instant },
    /// The request starts now.
    Request,
    /// `written` bytes of the request are out; `got_bytes` once any byte of the response arrived (it may come
    /// before the request is whole).
    Writing { written: usize, got_bytes: bool },
    /// Reading the response; `got_bytes` once any byte of it arrived. `request_whole`: the request was written to
    /// its end (false when the response came first): only then may the connection carry another.
    Reading { got_bytes: bool, request_whole: bool },
}

/// One stream: connect (or reuse a kept-alive connection), write the request, read the response.
pub(crate) struct Attempt {
    phase: Phase,
    /// Running on a kept-alive connection: if it fails before any response byte, the server had
    /// closed it (its idle timeout raced our request). That is retried once on a new connection,
    /// as browsers and HTTP libraries do, and is not a failure of the stream.
    on_kept_alive: bool,
    /// What the last readiness wait returned, for the phase to judge.
    pub(crate) wake_error: Option<std::io::Error>,
    /// The user's index on this core (its target and source address follow from it); u32 leaves room for
    /// `reads_left` in the attempt's 48 bytes.
    local: u32,
    /// The user's stream number, for templates.
    seq: u32,
    /// The attempt waited for readiness at least once.
    pub(crate) waited: bool,
    /// The request started: the machine's clock and events are this stream's.
    pub(crate) requested: bool,
    /// The machine's clock was started before the attempt (the open model's scheduled start).
    clock_started: bool,
    /// Reads left before the task must give the others a turn ([`Attempt::rested`] refills it).
    reads_left: u8,
}

impl Attempt {
    pub(crate) fn new(kept_alive: bool, local: usize, seq: u32, clock_started: bool) -> Attempt {
        let phase = if kept_alive { Phase::Request } else { Phase::Connect };
        Attempt {
            phase,
            on_kept_alive: kept_alive,
            wake_error: None,
            local: u32::try_from(local).expect("a core's users are numbered in u32"),
            seq,
            waited: false,
            requested: false,
            clock_started,
            reads_left: READS_PER_WAKE,
        }
    }

    fn local(&self) -> usize {
        self.local as usize
    }

    /// The task was suspended (its wait pended, or it yielded): the others had their turn, and the read budget is
    /// whole again.
    pub(crate) fn rested(&mut self) {
        self.reads_left = READS_PER_WAKE;
    }

    /// Does all the work that needs no waiting, up to the next wait or the stream's end.
    pub(crate) fn advance<'s>(
        &mut self,
        ctx: &CoreCtx,
        slot: &'s Slot,
        conn: &mut Option<Conn<'s>>,
        machine: &mut StreamMachine,
    ) -> Next {
        loop {
            let wake_error = self.wake_error.take();
            let step = match self.phase {
                Phase::Connect => self.start_connect(ctx, slot, conn),
                Phase::Connecting { started } => self.finish_connect(ctx, slot, conn, started, wake_error),
                Phase::Handshake { started } => self.handshake(ctx, slot, conn, started, wake_error),
                Phase::Request if self.on_kept_alive && stale(conn) => {
                    // Bytes (or an EOF) on an idle kept-alive connection answer nothing we asked: read as the next
                    // response they would miscount this stream, and the real answer would come after them. Closed
                    // before anything is sent, as curl, Chromium and Go's net/http do.
                    *conn = None;
                    ctx.core.borrow_mut().rec.stale_keepalive += 1;
                    self.phase = Phase::Connect;
                    None
                }
                Phase::Request => {
                    let now = Instant::now();
                    if !self.clock_started {
                        machine.begin(now);
                    }
                    self.requested = true;
                    // The head is due within --header-timeout of the request's start, writing included, and
                    // the write must keep moving: a server that never reads the request is bounded too.
                    let cfg = &ctx.shared.cfg;
                    slot.arm(ctx, Expiry::HeaderTimeout, now, cfg.header_timeout);
                    slot.byte_deadline_ms.set(ctx.deadline_ms(now, cfg.byte_idle_timeout));
                    slot.session_deadline_ms.set(ctx.deadline_ms(now, ctx.stream_length(slot, self.local(), self.seq)));
                    self.phase = Phase::Writing { written: 0, got_bytes: false };
                    self.write(ctx, slot, conn, machine, (0, false), None)
                }
                // Only after a wait: the first write is the request phase's.
                Phase::Writing { written, got_bytes } => {
                    self.write(ctx, slot, conn, machine, (written, got_bytes), Some(wake_error))
                }
                Phase::Reading { got_bytes, request_whole } => {
                    self.read(ctx, slot, conn, machine, (got_bytes, request_whole), wake_error)
                }
            };
            if let Some(next) = step {
                return next;
            }
        }
    }

    fn start_connect<'s>(&mut self, ctx: &CoreCtx, slot: &'s Slot, conn: &mut Option<Conn<'s>>) -> Option<Next> {
        let cfg = &ctx.shared.cfg;
        let started = Instant::now();
        self.on_kept_alive = false;
        // A retry after a stale kept-alive connection can come after the sweeper's last round:
        // a socket opened now would be watched by nobody and outlive the run.
        if ctx.run_over(started) {
            return Some(Next::Done(StreamEnd::Interrupted));
        }
        let (target, bind) = ctx.endpoint(self.local());
        let addr = ctx.core.borrow().redirects.addr(self.stream(ctx, slot)).unwrap_or(cfg.targets[target].addr);
        let (socket, in_progress) = match sys::start_connect(addr, bind) {
            Ok(started) => started,
            Err(err) => return Some(Next::Done(StreamEnd::Failed(sys::connect_failure(&err)))),
        };
        let stream = match TcpStream::from_std(socket) {
            Ok(stream) => stream,
            Err(err) => return Some(Next::Done(StreamEnd::Failed(sys::connect_failure(&err)))),
        };
        *conn = Some(Conn::new(stream, slot));
        if !in_progress {
            return self.connected(ctx, slot, conn, started);
        }
        // The sweeper enforces the timeout: a timer here would sit in every user's future.
        slot.arm(ctx, Expiry::ConnectTimeout, started, Some(cfg.connect_timeout));
        ctx.core.borrow_mut().connecting += 1;
        self.phase = Phase::Connecting { started };
        Some(Next::Wait(Interest::Write))
    }

    fn finish_connect(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        started: Instant,
        wake_error: Option<std::io::Error>,
    ) -> Option<Next> {
        slot.deadline_ms.set(0);
        ctx.core.borrow_mut().connecting -= 1;
        if slot.expired.get().is_some() {
            // The sweeper shut it down (connect timeout, end of run); the handshake may have
            // completed meanwhile, but this connect must not be recorded as one.
            *conn = None;
            return Some(Next::Done(StreamEnd::Failed(Failure::ConnectTimeout)));
        }
        let fd = raw_fd(conn);
        if let Some(err) = wake_error.or_else(|| sys::socket_error(fd)) {
            *conn = None;
            return Some(Next::Done(StreamEnd::Failed(sys::connect_failure(&err))));
        }
        self.connected(ctx, slot, conn, started)
    }

    fn connected(&mut self, ctx: &CoreCtx, slot: &Slot, conn: &mut Option<Conn<'_>>, started: Instant) -> Option<Next> {
        let now = Instant::now();
        let mut core = ctx.core.borrow_mut();
        let connect_us = micros_between(started, now);
        core.rec.histograms.connect_us.saturating_record(connect_us);
        if let Some(facts) = core.stream_facts(self.local()) {
            facts.connect_us = connect_us;
        }
        let target = &ctx.shared.cfg.targets[ctx.endpoint(self.local()).0];
        let name = core.redirects.tls_name(self.stream(ctx, slot)).unwrap_or(&target.tls_name);
        let (Some(name), Some(tls)) = (name, &ctx.shared.cfg.tls) else {
            self.phase = Phase::Request;
            return None;
        };
        let session = match tls.connect(name, ctx.tls_user(self.local())) {
            Ok(session) => session,
            Err(err) => {
                drop(core);
                return self.fail(slot, conn, crate::tls::failure(&err), false);
            }
        };
        if let Some(live) = conn.as_mut() {
            live.tls = Some(wire::Tls::new(session));
        }
        core.connecting += 1;
        slot.arm(ctx, Expiry::TlsHandshakeTimeout, now, Some(ctx.shared.cfg.connect_timeout));
        self.phase = Phase::Handshake { started: now };
        None
    }

    /// Drives the TLS handshake; at its end, times it and counts whether it resumed a session.
    fn handshake(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        started: Instant,
        wake_error: Option<std::io::Error>,
    ) -> Option<Next> {
        let fd = raw_fd(conn);
        let step = match (wake_error, tls_of(conn)) {
            (Some(err), _) => Step::Failed(sys::io_failure(&err)),
            (None, Some(tls)) => wire::handshake(fd, tls, ctx.tls_user(self.local())),
            (None, None) => Step::Failed(Failure::TlsError),
        };
        if let Step::Wait(want) = step {
            return Some(Next::Wait(want.into()));
        }
        slot.deadline_ms.set(0);
        let mut core = ctx.core.borrow_mut();
        core.connecting -= 1;
        if let Step::Failed(failure) = step {
            drop(core);
            return self.fail(slot, conn, failure, false);
        }
        let tls_us = micros_between(started, Instant::now());
        if let Some(facts) = core.stream_facts(self.local()) {
            facts.tls_us = tls_us;
        }
        let rec = &mut core.rec;
        rec.histograms.tls_handshake_us.saturating_record(tls_us);
        let resumed = tls_of(conn).is_some_and(|t| t.resumed());
        rec.tls_resumed_handshakes += u64::from(resumed);
        rec.tls_full_handshakes += u64::from(!resumed);
        self.phase = Phase::Request;
        None
    }

    /// Writes the request on from `written`. `woke`: this call follows a wait (for either readiness), and what the
    /// wait returned; the response may have started meanwhile.
    fn write(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        machine: &mut StreamMachine,
        (mut written, mut got_bytes): (usize, bool),
        woke: Option<Option<std::io::Error>>,
    ) -> Option<Next> {
        if let Some(woke) = woke {
            if let Some(err) = woke {
                return self.fail(slot, conn, sys::io_failure(&err), got_bytes);
            }
            // An answer before the request is whole is the answer (a 413, say): the same machine as the read
            // phase's classifies it. A whole head ends the write; the connection goes with this stream.
            match self.take(ctx, slot, conn, machine, &mut got_bytes, false) {
                Taken::Step(step) => return step,
                Taken::Drained | Taken::Budget if machine.head_received() => {
                    self.phase = Phase::Reading { got_bytes, request_whole: false };
                    return None;
                }
                Taken::Budget => {
                    self.phase = Phase::Writing { written, got_bytes };
                    return Some(Next::Wait(Interest::Yield));
                }
                Taken::Drained => {}
            }
        }
        let target = ctx.endpoint(self.local()).0;
        let stream = self.stream(ctx, slot);
        let last_event_id = if ctx.shared.cfg.reconnect { machine.last_event_id() } else { None };
        let mut core = ctx.core.borrow_mut();
        let Core { request_buf, render_buf, body_buf, redirects, .. } = &mut *core;
        // Rebuilt on every call, identically (a render is a pure function of the user, its
        // stream number and its journey so far), so a write that waited resumes at `written`.
        // Head and body: a body without placeholders is the run's one shared copy, written after the head; a body
        // rendered per stream comes with its head.
        let (head, body) = match &ctx.shared.requests[target] {
            TargetRequest::Encoded { head, body } => (&head[..], &body[..]),
            TargetRequest::Template(template) => {
                let state = ctx.journeys.get(self.local()).map(RefCell::borrow);
                let journey = state.as_deref().map_or(Journey::default(), |j| Journey {
                    turn: Some(u64::from(j.turn)),
                    history: &j.history,
                    extracted: &j.extracted,
                });
                template.render(ctx.vu(slot, self.local()), u64::from(self.seq), &journey, body_buf, render_buf);
                (&render_buf[..], template.body_apart())
            }
        };
        let head = match last_event_id {
            None => head,
            Some(id) => {
                with_last_event_id(request_buf, head, id);
                &request_buf[..]
            }
        };
        let request = redirects.request(stream, head, body);
        let fd = raw_fd(conn);
        let before = written;
        let step = wire::write(fd, tls_of(conn), request, &mut written);
        drop(core);
        // A write that moved resets the byte-idle deadline, as a read does; the header deadline runs on.
        let byte_idle_timeout = ctx.shared.cfg.byte_idle_timeout;
        if written > before && byte_idle_timeout.is_some() {
            slot.byte_deadline_ms.set(ctx.deadline_ms(Instant::now(), byte_idle_timeout));
        }
        match step {
            Step::Done => {}
            Step::Wait(want) => {
                self.phase = Phase::Writing { written, got_bytes };
                let interest = if want == Want::Write { Interest::ReadOrWrite } else { want.into() };
                return Some(Next::Wait(interest));
            }
            Step::Failed(failure) => return self.fail(slot, conn, failure, got_bytes),
        }
        self.phase = Phase::Reading { got_bytes, request_whole: true };
        Some(Next::Wait(Interest::Read))
    }

    fn read(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        machine: &mut StreamMachine,
        (mut got_bytes, request_whole): (bool, bool),
        wake_error: Option<std::io::Error>,
    ) -> Option<Next> {
        if let Some(err) = wake_error {
            return self.fail(slot, conn, sys::io_failure(&err), got_bytes);
        }
        let spent = match self.take(ctx, slot, conn, machine, &mut got_bytes, request_whole) {
            Taken::Step(step) => return step,
            Taken::Drained => false,
            Taken::Budget => true,
        };
        self.phase = Phase::Reading { got_bytes, request_whole };
        // Yield, not wait: after a spent budget data may be waiting (the others get their turn first), and bytes
        // rustls decrypted are out of the socket, so waiting for it to be readable could wait forever.
        if spent || tls_of(conn).is_some_and(|tls| wire::has_plaintext(tls)) {
            return Some(Next::Wait(Interest::Yield));
        }
        Some(Next::Wait(Interest::Drained))
    }

    /// Reads what the socket has, up to READS_PER_WAKE reads, into the machine, moving the stream's deadlines on.
    /// `request_whole`: the connection may carry another request if the response ends now.
    fn take(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        machine: &mut StreamMachine,
        got_bytes: &mut bool,
        request_whole: bool,
    ) -> Taken {
        let cfg = &ctx.shared.cfg;
        let fd = raw_fd(conn);
        let tls_user = ctx.tls_user(self.local());
        let mut drained = false;
        let mut core = ctx.core.borrow_mut();
        let Core { rec, scratch, streams_log, .. } = &mut *core;
        loop {
            if self.reads_left == 0 {
                return Taken::Budget;
            }
            let n = match wire::read(fd, tls_of(conn), scratch, &mut drained, tls_user) {
                wire::Read::Data(n) => n,
                wire::Read::Eof => {
                    let end = machine.on_eof();
                    drop(core);
                    return Taken::Step(self.end(slot, conn, end, *got_bytes));
                }
                wire::Read::Wait => return Taken::Drained,
                wire::Read::Failed(failure) => {
                    drop(core);
                    return Taken::Step(self.fail(slot, conn, failure, *got_bytes));
                }
            };
            self.reads_left -= 1;
            *got_bytes = true;
            let now = Instant::now();
            let (had_head, events_before) = (machine.head_received(), machine.events());
            // `--streams-log` only: without it a read pays the one `is_some` below, nothing more.
            let heads_before = streams_log.is_some().then(|| rec.histograms.headers_us.len());
            let progress = machine.on_bytes(now, &scratch[..n], rec);
            if let (Some(log), Some(heads_before)) = (streams_log.as_deref_mut(), heads_before) {
                // The same values, from the same clock and read timestamp, as the machine just recorded.
                let facts = &mut log.current[self.local()];
                facts.bytes += n as u64;
                if rec.histograms.headers_us.len() > heads_before {
                    facts.headers_us = micros_between(machine.request_start(), now);
                }
                if events_before == 0 && machine.events() > 0 {
                    facts.first_event_us = micros_between(machine.request_start(), now);
                }
            }
            // Timeouts move on with the stream: any byte resets the byte-idle one; the head
            // starts the first-event one; each event restarts the idle one.
            if cfg.byte_idle_timeout.is_some() {
                slot.byte_deadline_ms.set(ctx.deadline_ms(now, cfg.byte_idle_timeout));
            }
            if machine.events() > events_before {
                slot.arm(ctx, Expiry::IdleTimeout, now, cfg.idle_timeout);
            } else if !had_head && machine.head_received() {
                slot.arm(ctx, Expiry::FirstEventTimeout, now, cfg.first_event_timeout);
            }
            match progress {
                Progress::Done { end, reusable } => {
                    // A redirected stream's connection went to its Location, not to where the next stream goes.
                    if !(reusable && request_whole) || machine.redirects() > 0 {
                        *conn = None;
                    }
                    return Taken::Step(Some(Next::Done(end)));
                }
                Progress::Redirect { status, reusable } => {
                    drop(core);
                    // Mid-write the connection still owes the rest of the request: it cannot carry the next hop.
                    return Taken::Step(self.follow(ctx, slot, conn, machine, status, reusable && request_whole));
                }
                Progress::NeedMore => {}
            }
        }
    }

    /// A redirect: the stream goes on at its Location, on its own clock, over this connection if the answer was read
    /// whole and the Location is on the same origin, else over a new one.
    fn follow(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        machine: &mut StreamMachine,
        status: u16,
        reusable: bool,
    ) -> Option<Next> {
        let (stream, target) = (self.stream(ctx, slot), ctx.endpoint(self.local()).0);
        let mut core = ctx.core.borrow_mut();
        let Core { redirects, rec, .. } = &mut *core;
        let destination = match redirects.follow(stream, &ctx.shared.cfg, target, status, machine.location()) {
            Ok(destination) => destination,
            Err(failure) => {
                drop(core);
                return self.fail(slot, conn, failure, true);
            }
        };
        rec.redirects += 1;
        drop(core);
        machine.begin_hop();
        self.clock_started = true;
        slot.disarm();
        if reusable && destination == Destination::SameOrigin {
            self.on_kept_alive = true;
            self.phase = Phase::Request;
        } else {
            *conn = None;
            self.phase = Phase::Connect;
        }
        None
    }

    /// This stream among its slot's: the key of its redirect state.
    fn stream(&self, ctx: &CoreCtx, slot: &Slot) -> StreamId {
        StreamId { local: self.local(), vu: ctx.vu(slot, self.local()), seq: self.seq }
    }

    fn fail(&mut self, slot: &Slot, conn: &mut Option<Conn<'_>>, failure: Failure, got_bytes: bool) -> Option<Next> {
        self.end(slot, conn, StreamEnd::Failed(failure), got_bytes)
    }

    /// The connection is done with. A kept-alive connection that ends before any response byte
    /// is retried on a new connection instead of failing the stream.
    fn end(&mut self, slot: &Slot, conn: &mut Option<Conn<'_>>, end: StreamEnd, got_bytes: bool) -> Option<Next> {
        *conn = None;
        // A socket the sweeper shut down (a timeout, the end of the run) is not a stale one.
        if self.on_kept_alive && !got_bytes && slot.expired.get().is_none() {
            self.phase = Phase::Connect;
            return None;
        }
        Some(Next::Done(end))
    }
}

/// A kept-alive connection that received something while idle: bytes or an EOF in the socket, or over TLS
/// plaintext rustls already holds. One syscall per reused connection.
fn stale(conn: &mut Option<Conn<'_>>) -> bool {
    let fd = raw_fd(conn);
    tls_of(conn).is_some_and(|tls| wire::has_plaintext(tls)) || sys::received_while_idle(fd)
}

impl From<Want> for Interest {
    fn from(want: Want) -> Interest {
        match want {
            Want::Read => Interest::Read,
            Want::Write => Interest::Write,
        }
    }
}

/// `request` (encoded once) with a `Last-Event-ID: id` header added at the end of its head.
fn with_last_event_id(out: &mut Vec<u8>, request: &[u8], id: &[u8]) {
    // The SSE parser splits lines at CR and LF and drops ids with NUL, so none can reach a header value, where
    // they would end the header (or the head) early.
    assert!(memchr::memchr3(b'\r', b'\n', 0, id).is_none(), "an event id with CR, LF or NUL");
    let head_end = memchr::memmem::find(request, b"\r\n\r\n").map_or(request.len(), |i| i + 2);
    out.clear();
    out.extend_from_slice(&request[..head_end]);
    out.extend_from_slice(b"Last-Event-ID: ");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request[head_end..]);
}

#[cfg(test)]
mod tests {
    //! Each test scripts the server's side synchronously and, where the user's task would await readiness, waits
    //! for it with poll(2): every step is decided before the next call, so nothing depends on timing.

    use std::future::Future;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::net::UnixStream;

    use monoio::net::TcpStream;

    use crate::recorder::{Failure, StreamEnd};
    use crate::runtime::{Driver, block_on};
    use crate::stream::StreamMachine;
    use crate::worker::attempt::{Attempt, Interest, Next, Phase, READS_PER_WAKE, with_last_event_id};
    use crate::worker::core::{Conn, CoreCtx, Expiry, Slot, raw_fd, test_ctx};

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    /// A close-delimited event stream: it goes on until the server closes it.
    const OPEN_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    const EVENT: &[u8] = b"data: a\n\n";
    /// A response of one `EVENT`: it ends with it.
    const ONE_EVENT_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\n";
    /// Where nothing listens: only an attempt that wrongly reconnects would go there.
    const NOWHERE: &str = "127.0.0.1:1";

    /// User 0's attempt and what its task holds for it, as `virtual_user` sets them up.
    struct Harness<'s> {
        ctx: &'s CoreCtx,
        attempt: Attempt,
        conn: Option<Conn<'s>>,
        machine: StreamMachine,
    }

    impl<'s> Harness<'s> {
        fn new(ctx: &'s CoreCtx, conn: Option<Conn<'s>>) -> Harness<'s> {
            let attempt = Attempt::new(conn.is_some(), 0, 0, false);
            Harness { ctx, attempt, conn, machine: StreamMachine::new(1024) }
        }

        fn advance(&mut self) -> Next {
            self.attempt.advance(self.ctx, &self.ctx.slots[0], &mut self.conn, &mut self.machine)
        }

        /// Waits for what the attempt asked, as the user's task would when the wait suspends it (its read budget
        /// refilled), then advances it.
        fn wake(&mut self, interest: Interest) -> Next {
            wait_for(self.fd(), interest);
            self.attempt.rested();
            self.advance()
        }

        fn fd(&self) -> RawFd {
            raw_fd(&self.conn)
        }
    }

    /// An epoll runtime: the attempt registers its sockets with monoio, though the tests never await them.
    fn run(test: impl Future<Output = ()>) {
        block_on(Driver::Epoll, test).expect("an epoll runtime");
    }

    /// Blocks until `fd` is ready for `interest`. The 10 s bound only keeps a broken test from hanging.
    fn wait_for(fd: RawFd, interest: Interest) {
        let events = match interest {
            Interest::Read | Interest::Drained => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
            Interest::ReadOrWrite => libc::POLLIN | libc::POLLOUT,
            Interest::Yield => return,
        };
        let mut pollfd = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: one live pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, 10_000) };
        assert_eq!(ready, 1, "descriptor {fd} never became ready for {interest:?}");
    }

    /// Bytes received on `fd` and not read yet.
    fn unread(fd: RawFd) -> usize {
        let mut bytes: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int.
        assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes) }, 0);
        bytes as usize
    }

    /// A connection kept alive from the user's last stream, registered in `slot`: one end of a Unix socket pair of
    /// type `kind` (the attempt only calls recv and send on it, which a Unix socket answers as TCP would), and the
    /// server's end.
    fn kept_alive(slot: &Slot, kind: libc::c_int) -> (Conn<'_>, UnixStream) {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two new descriptors into `fds`.
        assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are new, and nothing else owns them.
        let (client, server) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let stream = TcpStream::from_std(std::net::TcpStream::from(client)).expect("registered with the runtime");
        (Conn::new(stream, slot), UnixStream::from(server))
    }

    fn read_request(server: &mut impl Read) {
        let mut request = vec![0; REQUEST.len()];
        server.read_exact(&mut request).unwrap();
        assert_eq!(request, REQUEST);
    }

    /// connect -> request written -> reading -> end: each phase asks for the readiness it needs and arms the
    /// sweeper's deadline for it, and the recorder sees the connect, the head and the event.
    #[test]
    fn phases_run_from_connect_to_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ctx = test_ctx(listener.local_addr().unwrap(), REQUEST, 4096);
        run(async {
            let slot = &ctx.slots[0];
            let mut h = Harness::new(&ctx, None);
            // Linux answers a non-blocking TCP connect with EINPROGRESS, on loopback too.
            assert_eq!(h.advance(), Next::Wait(Interest::Write));
            assert!(matches!(h.attempt.phase, Phase::Connecting { .. }));
            assert_eq!((slot.fd.get(), slot.deadline.get()), (h.fd(), Expiry::ConnectTimeout));
            assert_ne!(slot.deadline_ms.get(), 0, "the sweeper times the connect");
            assert_eq!(ctx.core.borrow().connecting, 1);

            // Connected: the request goes out in the same call, and the response head is awaited.
            assert_eq!(h.wake(Interest::Write), Next::Wait(Interest::Read));
            assert!(matches!(h.attempt.phase, Phase::Reading { got_bytes: false, .. }));
            assert!(h.attempt.requested);
            assert_eq!(slot.deadline.get(), Expiry::HeaderTimeout);
            assert_eq!(ctx.core.borrow().connecting, 0);
            assert_eq!(ctx.core.borrow().rec.histograms.connect_us.len(), 1);
            let (mut server, _) = listener.accept().unwrap();
            server.set_nodelay(true).unwrap();
            read_request(&mut server);

            // The head: still reading, now for the first event.
            server.write_all(ONE_EVENT_HEAD).unwrap();
            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Drained));
            assert!(matches!(h.attempt.phase, Phase::Reading { got_bytes: true, .. }));
            assert!(h.machine.head_received());
            assert_eq!(slot.deadline.get(), Expiry::FirstEventTimeout);

            // The body's one event ends the response: a completed stream, its connection kept for the next.
            server.write_all(EVENT).unwrap();
            assert_eq!(h.wake(Interest::Read), Next::Done(StreamEnd::Completed));
            assert!(h.conn.is_some());
            let rec = &ctx.core.borrow().rec;
            assert_eq!((rec.histograms.headers_us.len(), rec.histograms.first_event_us.len(), rec.events), (1, 1, 1));
        });
    }

    /// A kept-alive connection that fails before any response byte (the server closed it as the request went out)
    /// is retried once on a new connection; the new one failing the same way ends the stream.
    #[test]
    fn kept_alive_failure_before_a_byte_is_retried_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ctx = test_ctx(listener.local_addr().unwrap(), REQUEST, 4096);
        run(async {
            let (conn, mut server) = kept_alive(&ctx.slots[0], libc::SOCK_STREAM);
            let mut h = Harness::new(&ctx, Some(conn));
            assert_eq!(h.advance(), Next::Wait(Interest::Read), "the request goes out on the kept connection");
            read_request(&mut server);
            drop(server);

            // The EOF does not end the stream: a new connect is under way instead.
            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Write));
            assert!(matches!(h.attempt.phase, Phase::Connecting { .. }));
            assert!(!h.attempt.on_kept_alive);
            assert_eq!(ctx.slots[0].fd.get(), h.fd());
            assert_eq!(h.wake(Interest::Write), Next::Wait(Interest::Read));
            let (mut server, _) = listener.accept().unwrap();
            read_request(&mut server);
            drop(server);

            // The retry failed before a byte too: that is the stream's end.
            assert_eq!(h.wake(Interest::Read), Next::Done(StreamEnd::Failed(Failure::PrematureEof)));
            assert!(h.conn.is_none());
            assert_eq!(ctx.slots[0].fd.get(), -1);
            assert_eq!(ctx.core.borrow().rec.histograms.connect_us.len(), 1, "one new connection");
            listener.set_nonblocking(true).unwrap();
            assert!(listener.accept().is_err(), "no third connection");
        });
    }

    /// A kept-alive connection that received something while idle (a response nobody asked for, or the server's
    /// EOF) is not reused: it is closed and counted before anything is sent, and the stream connects anew.
    #[test]
    fn a_kept_alive_connection_that_received_while_idle_is_stale() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ctx = test_ctx(listener.local_addr().unwrap(), REQUEST, 4096);
        run(async {
            for received in [Some(ONE_EVENT_HEAD), None] {
                let (conn, mut server) = kept_alive(&ctx.slots[0], libc::SOCK_STREAM);
                match received {
                    Some(bytes) => server.write_all(bytes).unwrap(),
                    None => server.shutdown(std::net::Shutdown::Write).unwrap(),
                }
                let before = ctx.core.borrow().rec.stale_keepalive;
                let mut h = Harness::new(&ctx, Some(conn));
                assert_eq!(h.advance(), Next::Wait(Interest::Write), "a new connect, not the request");
                assert!(matches!(h.attempt.phase, Phase::Connecting { .. }));
                assert_eq!(ctx.core.borrow().rec.stale_keepalive, before + 1);
                // Closed with the unasked bytes unread, so the server may see a reset rather than an EOF.
                let mut rest = Vec::new();
                let closed = server.read_to_end(&mut rest);
                assert!(closed.is_ok() || closed.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
                assert!(rest.is_empty(), "closed with nothing sent: {rest:?}");
                drop(h);
                ctx.core.borrow_mut().connecting = 0;
            }
        });
    }

    /// A kept-alive connection the sweeper shut down failed for the sweeper's reason (a timeout, the end of the
    /// run), not because the server had closed it: it is not retried.
    #[test]
    fn kept_alive_connection_shut_by_the_sweeper_is_not_retried() {
        let ctx = test_ctx(NOWHERE.parse().unwrap(), REQUEST, 4096);
        run(async {
            let (conn, _server) = kept_alive(&ctx.slots[0], libc::SOCK_STREAM);
            let mut h = Harness::new(&ctx, Some(conn));
            assert_eq!(h.advance(), Next::Wait(Interest::Read));
            ctx.slots[0].expire(Expiry::HeaderTimeout);
            assert_eq!(h.wake(Interest::Read), Next::Done(StreamEnd::Failed(Failure::PrematureEof)));
            assert!(h.conn.is_none());
            assert!(matches!(h.attempt.phase, Phase::Reading { got_bytes: false, .. }));
        });
    }

    /// A server may answer before it has read the whole request (RFC 9112 §9.5), then stop reading: the attempt,
    /// waiting for either readiness while it writes, reads that answer and the stream is classified by it. The
    /// connection, with part of a request on it, is not kept.
    #[test]
    fn an_answer_before_the_request_is_whole_ends_the_write() {
        // Far more than a Unix socket pair buffers.
        let request = [REQUEST, &vec![b'x'; 4 << 20]].concat();
        let ctx = test_ctx(NOWHERE.parse().unwrap(), &request, 4096);
        run(async {
            let (conn, mut server) = kept_alive(&ctx.slots[0], libc::SOCK_STREAM);
            let mut h = Harness::new(&ctx, Some(conn));
            assert_eq!(h.advance(), Next::Wait(Interest::ReadOrWrite));
            let Phase::Writing { written, got_bytes: false } = h.attempt.phase else { panic!("{:?}", h.attempt.phase) };
            assert!(0 < written && written < request.len(), "{written} of {} bytes written", request.len());

            server.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n").unwrap();
            assert_eq!(h.wake(Interest::ReadOrWrite), Next::Done(StreamEnd::Failed(Failure::HttpStatus(413))));
            assert!(h.conn.is_none());
            assert_eq!(ctx.core.borrow().rec.histograms.headers_us.len(), 1);
        });
    }

    /// A read shorter than the scratch buffer is taken as draining the socket: the attempt waits for readability
    /// rather than reading again to EAGAIN. A SOCK_SEQPACKET pair keeps message boundaries, so after a wake-up
    /// that read the first message, the second is still unread.
    #[test]
    fn a_short_read_is_taken_as_drained() {
        let ctx = test_ctx(NOWHERE.parse().unwrap(), REQUEST, 4096);
        run(async {
            let (conn, mut server) = kept_alive(&ctx.slots[0], libc::SOCK_SEQPACKET);
            let mut h = Harness::new(&ctx, Some(conn));
            assert_eq!(h.advance(), Next::Wait(Interest::Read));
            read_request(&mut server);
            server.write_all(OPEN_HEAD).unwrap();
            server.write_all(EVENT).unwrap();

            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Drained));
            assert!(h.machine.head_received());
            assert_eq!((h.machine.events(), unread(h.fd())), (0, EVENT.len()));
            assert_eq!(ctx.core.borrow().rec.bytes, OPEN_HEAD.len() as u64);

            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Drained));
            assert_eq!((h.machine.events(), unread(h.fd())), (1, 0));
        });
    }

    /// A read that fills the scratch buffer may have left bytes behind, so the attempt reads again, but at most
    /// READS_PER_WAKE times before its task gives the others a turn: then it asks to yield. The budget counts across
    /// waits that did not suspend the task (on epoll a wait completes at once while data is waiting), so a stream
    /// whose data never stops cannot keep its core to itself with short reads either.
    #[test]
    fn full_reads_read_again_up_to_reads_per_wake() {
        const SCRATCH: usize = 64;
        let budget = usize::from(READS_PER_WAKE);
        let ctx = test_ctx(NOWHERE.parse().unwrap(), REQUEST, SCRATCH);
        let events_past = |bytes: usize| EVENT.repeat(bytes / EVENT.len() + 1);
        run(async {
            let (conn, mut server) = kept_alive(&ctx.slots[0], libc::SOCK_STREAM);
            let mut h = Harness::new(&ctx, Some(conn));
            assert_eq!(h.advance(), Next::Wait(Interest::Read));
            read_request(&mut server);
            let bytes = || ctx.core.borrow().rec.bytes as usize;

            // More than three buffers: one wake-up reads them all, up to the short read.
            let response = [OPEN_HEAD, &events_past(3 * SCRATCH)].concat();
            server.write_all(&response).unwrap();
            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Drained));
            assert_eq!((bytes(), unread(h.fd())), (response.len(), 0));

            // More than READS_PER_WAKE buffers: one wake-up reads READS_PER_WAKE full ones and yields; the turn
            // after the yield reads the rest.
            let events = events_past(budget * SCRATCH);
            server.write_all(&events).unwrap();
            assert_eq!(h.wake(Interest::Read), Next::Wait(Interest::Yield));
            assert_eq!(bytes(), response.len() + budget * SCRATCH);
            assert_eq!(unread(h.fd()), events.len() - budget * SCRATCH);
            assert_eq!(h.wake(Interest::Yield), Next::Wait(Interest::Drained));
            assert_eq!((bytes(), unread(h.fd())), (response.len() + events.len(), 0));
            let total = response.len() + events.len();
            assert_eq!(h.machine.events() as usize, (total - OPEN_HEAD.len()) / EVENT.len());

            // Waits that complete at once (advance without rest): the READS_PER_WAKE-th short read asks for a yield,
            // and no read happens until the task has been suspended.
            h.attempt.rested();
            for read in 1..=budget {
                server.write_all(EVENT).unwrap();
                let asks = if read < budget { Interest::Drained } else { Interest::Yield };
                assert_eq!(h.advance(), Next::Wait(asks), "read {read}");
            }
            server.write_all(EVENT).unwrap();
            assert_eq!(h.advance(), Next::Wait(Interest::Yield));
            assert_eq!(unread(h.fd()), EVENT.len());
            assert_eq!(h.wake(Interest::Yield), Next::Wait(Interest::Drained));
            assert_eq!(unread(h.fd()), 0);
        });
    }

    /// The header goes at the end of the head, before the blank line and any body, with the id's bytes as they are.
    #[test]
    fn last_event_id_is_added_to_the_head_verbatim() {
        let mut out = Vec::new();
        with_last_event_id(&mut out, b"POST / HTTP/1.1\r\nHost: h\r\n\r\n{}", b"1700000000000-3");
        assert_eq!(out, b"POST / HTTP/1.1\r\nHost: h\r\nLast-Event-ID: 1700000000000-3\r\n\r\n{}");
        with_last_event_id(&mut out, REQUEST, b"\xC3\xA9 x:y");
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\nLast-Event-ID: \xC3\xA9 x:y\r\n\r\n");
    }

    #[test]
    #[should_panic(expected = "an event id with CR, LF or NUL")]
    fn an_id_with_a_line_end_never_reaches_a_header() {
        with_last_event_id(&mut Vec::new(), REQUEST, b"1\r\nX-Injected: yes");
    }
}
