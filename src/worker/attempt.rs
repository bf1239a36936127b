//! One stream attempt as a phase machine (`Attempt`: connect, TLS handshake, request, response), advanced without
//! blocking as far as it can go: to its next readiness wait (`Interest`) or to the stream's end (`Next`).

use std::cell::RefCell;
use std::time::Instant;

use monoio::net::TcpStream;

use crate::recorder::{Failure, StreamEnd};
use crate::stream::{Progress, StreamMachine, micros_between};
use crate::sys;
use crate::template::{Journey, TargetRequest};
use crate::wire::{self, Step, Want};
use crate::worker::core::{Conn, Core, CoreCtx, Expiry, Slot, raw_fd, tls_of};

/// Reads per readiness wake-up, so one fast stream cannot starve the others on its core.
const READS_PER_WAKE: usize = 16;

/// What a stream attempt waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
    /// Nothing to wait for (TLS holds decrypted bytes the socket no longer has), but the others get a turn.
    Yield,
}

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
    /// `written` bytes of the request are out.
    Writing { written: usize },
    /// Reading the response; `got_bytes` once any byte of it arrived.
    Reading { got_bytes: bool },
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
    /// The user's index on this core (its target and source address follow from it).
    local: usize,
    /// The user's stream number, for templates.
    seq: u32,
    /// The attempt waited for readiness at least once.
    pub(crate) waited: bool,
    /// The request started: the machine's clock and events are this stream's.
    pub(crate) requested: bool,
    /// The machine's clock was started before the attempt (the open model's scheduled start).
    clock_started: bool,
}

impl Attempt {
    pub(crate) fn new(kept_alive: bool, local: usize, seq: u32, clock_started: bool) -> Attempt {
        let phase = if kept_alive { Phase::Request } else { Phase::Connect };
        Attempt {
            phase,
            on_kept_alive: kept_alive,
            wake_error: None,
            local,
            seq,
            waited: false,
            requested: false,
            clock_started,
        }
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
                Phase::Request => {
                    let now = Instant::now();
                    if !self.clock_started {
                        machine.begin(now);
                    }
                    self.requested = true;
                    slot.session_deadline_ms.set(ctx.deadline_ms(now, ctx.stream_length(slot, self.local, self.seq)));
                    self.phase = Phase::Writing { written: 0 };
                    None
                }
                Phase::Writing { written } => {
                    let resume_after = if ctx.shared.cfg.reconnect { machine.last_id() } else { None };
                    self.write(ctx, slot, conn, written, wake_error, resume_after)
                }
                Phase::Reading { got_bytes } => self.read(ctx, slot, conn, machine, got_bytes, wake_error),
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
        let (target, bind) = ctx.endpoint(self.local);
        let (socket, in_progress) = match sys::start_connect(cfg.targets[target].addr, bind) {
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
        core.rec.histograms.connect_us.saturating_record(micros_between(started, now));
        let target = &ctx.shared.cfg.targets[ctx.endpoint(self.local).0];
        let (Some(name), Some(tls)) = (&target.tls_name, &ctx.shared.cfg.tls) else {
            self.phase = Phase::Request;
            return None;
        };
        let session = match tls.connect(name, ctx.tls_user(self.local)) {
            Ok(session) => session,
            Err(err) => {
                drop(core);
                return self.fail(slot, conn, crate::tls::failure(&err), false);
            }
        };
        if let Some(live) = conn.as_mut() {
            live.tls = Some(session);
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
            (None, Some(tls)) => wire::handshake(fd, tls, ctx.tls_user(self.local)),
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
        let rec = &mut core.rec;
        rec.histograms.tls_handshake_us.saturating_record(micros_between(started, Instant::now()));
        let resumed = tls_of(conn).and_then(|t| t.handshake_kind()) == Some(rustls::HandshakeKind::Resumed);
        rec.tls_resumed_handshakes += u64::from(resumed);
        rec.tls_full_handshakes += u64::from(!resumed);
        self.phase = Phase::Request;
        None
    }

    fn write(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        mut written: usize,
        wake_error: Option<std::io::Error>,
        resume_after: Option<u64>,
    ) -> Option<Next> {
        if let Some(err) = wake_error {
            return self.fail(slot, conn, sys::io_failure(&err), false);
        }
        let target = ctx.endpoint(self.local).0;
        let mut core = ctx.core.borrow_mut();
        let Core { request_buf, render_buf, body_buf, .. } = &mut *core;
        // Rebuilt on every call, identically (a render is a pure function of the user, its
        // stream number and its journey so far), so a write that waited resumes at `written`.
        let base = match &ctx.shared.requests[target] {
            TargetRequest::Encoded(bytes) => &bytes[..],
            TargetRequest::Template(template) => {
                let state = ctx.journeys.get(self.local).map(RefCell::borrow);
                let journey = state.as_deref().map_or(Journey::default(), |j| Journey {
                    turn: Some(u64::from(j.turn)),
                    history: &j.history,
                    extracted: &j.extracted,
                });
                template.render(ctx.vu(slot, self.local), u64::from(self.seq), &journey, body_buf, render_buf);
                &render_buf[..]
            }
        };
        let request = match resume_after {
            None => base,
            Some(id) => {
                with_last_event_id(request_buf, base, id);
                &request_buf[..]
            }
        };
        let fd = raw_fd(conn);
        match wire::write(fd, tls_of(conn), request, &mut written) {
            Step::Done => {}
            Step::Wait(want) => {
                self.phase = Phase::Writing { written };
                return Some(Next::Wait(want.into()));
            }
            Step::Failed(failure) => {
                drop(core);
                return self.fail(slot, conn, failure, false);
            }
        }
        drop(core);
        // The request is out: the response head is due, and bytes must keep coming.
        let cfg = &ctx.shared.cfg;
        let now = Instant::now();
        slot.arm(ctx, Expiry::HeaderTimeout, now, cfg.header_timeout);
        slot.byte_deadline_ms.set(ctx.deadline_ms(now, cfg.byte_idle_timeout));
        self.phase = Phase::Reading { got_bytes: false };
        Some(Next::Wait(Interest::Read))
    }

    fn read(
        &mut self,
        ctx: &CoreCtx,
        slot: &Slot,
        conn: &mut Option<Conn<'_>>,
        machine: &mut StreamMachine,
        mut got_bytes: bool,
        wake_error: Option<std::io::Error>,
    ) -> Option<Next> {
        if let Some(err) = wake_error {
            return self.fail(slot, conn, sys::io_failure(&err), got_bytes);
        }
        let cfg = &ctx.shared.cfg;
        let fd = raw_fd(conn);
        let tls_user = ctx.tls_user(self.local);
        let mut drained = false;
        let mut core = ctx.core.borrow_mut();
        let Core { rec, scratch, .. } = &mut *core;
        for _ in 0..READS_PER_WAKE {
            let n = match wire::read(fd, tls_of(conn), scratch, &mut drained, tls_user) {
                wire::Read::Data(n) => n,
                wire::Read::Eof => {
                    let end = machine.on_eof();
                    drop(core);
                    return self.end(slot, conn, end, got_bytes);
                }
                wire::Read::Wait => break,
                wire::Read::Failed(failure) => {
                    drop(core);
                    return self.fail(slot, conn, failure, got_bytes);
                }
            };
            got_bytes = true;
            let now = Instant::now();
            let (had_head, events_before) = (machine.head_received(), machine.events());
            let progress = machine.on_bytes(now, &scratch[..n], rec);
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
                    if !reusable {
                        *conn = None;
                    }
                    return Some(Next::Done(end));
                }
                Progress::NeedMore => {}
            }
        }
        self.phase = Phase::Reading { got_bytes };
        // Bytes rustls decrypted are out of the socket: waiting for it to be readable could wait forever.
        if tls_of(conn).is_some_and(|tls| wire::has_plaintext(tls)) {
            return Some(Next::Wait(Interest::Yield));
        }
        Some(Next::Wait(Interest::Read))
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

impl From<Want> for Interest {
    fn from(want: Want) -> Interest {
        match want {
            Want::Read => Interest::Read,
            Want::Write => Interest::Write,
        }
    }
}

/// `request` (encoded once) with a `Last-Event-ID: id` header added at the end of its head.
fn with_last_event_id(out: &mut Vec<u8>, request: &[u8], id: u64) {
    let head_end = memchr::memmem::find(request, b"\r\n\r\n").map_or(request.len(), |i| i + 2);
    out.clear();
    out.extend_from_slice(&request[..head_end]);
    out.extend_from_slice(b"Last-Event-ID: ");
    out.extend_from_slice(crate::http1::request::decimal(id, &mut [0u8; 20]));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request[head_end..]);
}
