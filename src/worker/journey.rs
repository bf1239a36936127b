//! `--scenario` journeys: what comes before a user's next stream (the HTTP steps at a journey's start, think time
//! before a later turn), each step's request and answer on a connection of its own, and the conversation after a turn.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::http1::exchange::{Exchange, Response};
use crate::recorder::{Failure, StreamEnd};
use crate::stream::StreamMachine;
use crate::streams_log::StreamRecord;
use crate::sys;
use crate::template::{Journey, TargetRequest};
use crate::units::micros_between;
use crate::wire::{self, Step, Want};
use crate::worker::core::{Conn, CoreCtx, JourneyState, Pause, Slot};

/// What a journey does before its next stream.
pub(crate) enum BeforeTurn {
    Stream,
    /// A step failed: pause, then start the journey over.
    Retry,
    /// The run is over.
    Stop,
}

/// `--scenario`: what comes before user `index`'s next stream. At a journey's start, the conversation starts over
/// and the HTTP steps run; before a later turn, the think time passes.
pub(crate) async fn before_turn(ctx: &CoreCtx, index: usize, seq: u32) -> BeforeTurn {
    let Some(llm) = &ctx.shared.cfg.llm else { return BeforeTurn::Stream };
    let Some(scenario) = &llm.scenario else { return BeforeTurn::Stream };
    let vu = ctx.vu(&ctx.slots[index], index);
    if ctx.journeys[index].borrow().turn > 0 {
        let (low, high) = scenario.conversation.think_time;
        if high.is_zero() {
            return BeforeTurn::Stream;
        }
        let think = crate::rng::uniform_duration(low, high, ctx.shared.cfg.seed, vu, seq);
        // A `Pause` the sweeper ends, as between reconnects: no monoio `Sleep` (640 B) in the turn's boxed future.
        return if Pause::new(ctx, &ctx.slots[index], think).await { BeforeTurn::Stream } else { BeforeTurn::Stop };
    }
    {
        let mut journey = ctx.journeys[index].borrow_mut();
        let JourneyState { history, extracted, .. } = &mut *journey;
        history.clear();
        if let Some(system) = &scenario.conversation.system {
            crate::llm::prompt::push_message(history, "system", system.as_bytes());
        }
        extracted.iter_mut().for_each(Vec::clear);
    }
    for step in 0..scenario.http.len() {
        let started = Instant::now();
        if ctx.run_over(started) {
            return BeforeTurn::Stop;
        }
        let ok = run_step(ctx, index, step, seq).await;
        let now = Instant::now();
        ctx.slots[index].expired.set(None);
        // A step cut by the end of the run, or by a `--stages` step down, is not the step's failure.
        if !ok && (ctx.run_over(now) || !ctx.may_start(index)) {
            return BeforeTurn::Stop;
        }
        let mut core = ctx.core.borrow_mut();
        let rec = &mut core.rec;
        let took_us = micros_between(started, now);
        if let Some(step_rec) = rec.llm.as_deref_mut().and_then(|l| l.steps.get_mut(step)) {
            step_rec.latency_us.saturating_record(took_us);
            step_rec.ok += u64::from(ok);
            step_rec.failed += u64::from(!ok);
        }
        if !ok {
            // The turn's stream cannot start: it counts as a failed stream (taking the place in -n that its
            // stream took), so a broken login shows in the success rate.
            let rec = &mut core.rec;
            rec.stream_opened();
            rec.stream_closed(StreamEnd::Failed(Failure::StepFailed), took_us, 0);
            if let Some(log) = core.streams_log.as_deref_mut() {
                let start_us = micros_between(ctx.timing.start, started);
                let end = StreamEnd::Failed(Failure::StepFailed);
                log.push(StreamRecord { vu, stream: seq, start_us, end, stream_us: took_us, ..StreamRecord::EMPTY });
            }
            return BeforeTurn::Retry;
        }
    }
    BeforeTurn::Stream
}

/// A step's answer has this long (after the connect timeout) when no `--header-timeout` says otherwise.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs HTTP step `step` for user `index`: true when it answered 2xx and every value it extracts was found.
async fn run_step(ctx: &CoreCtx, index: usize, step: usize, seq: u32) -> bool {
    let cfg = &ctx.shared.cfg;
    let Some(scenario) = cfg.llm.as_ref().and_then(|l| l.scenario.as_ref()) else { return false };
    let slot = &ctx.slots[index];
    let (target, bind) = ctx.endpoint(index);
    let (mut request, mut body) = (Vec::new(), Vec::new());
    {
        let journey = ctx.journeys[index].borrow();
        let state = Journey { turn: None, history: &[], extracted: &journey.extracted };
        ctx.shared.steps[target][step].render(ctx.vu(slot, index), u64::from(seq), &state, &mut body, &mut request);
    }
    let limit = cfg.connect_timeout + cfg.header_timeout.unwrap_or(STEP_TIMEOUT);
    let own = cfg.llm.as_ref().and_then(|l| l.step_targets.get(step)).and_then(Option::as_ref);
    let to = own.unwrap_or(&cfg.targets[target]);
    let session = match (&to.tls_name, &cfg.tls) {
        // No session to resume: a step's connection is not the user's stream connection.
        (Some(name), Some(tls)) => match tls.connect(name, None) {
            Ok(session) => Some(session),
            Err(_) => return false,
        },
        _ => None,
    };
    let exchanged = monoio::time::timeout(limit, exchange(slot, to.addr, bind, session, &request)).await;
    let Ok(Some(response)) = exchanged else { return false };
    let mut journey = ctx.journeys[index].borrow_mut();
    for ((_, path), &slot) in scenario.http[step].extract.iter().zip(&ctx.shared.extract_slots[step]) {
        let Ok(Some(value)) = path.extract(response.body()) else { return false };
        journey.extracted[slot] = value.into_bytes();
    }
    true
}

/// One HTTP request and its whole answer, on a connection of its own registered in `slot` (so the end of the run
/// shuts it down), over TLS when given a `session`. `None` on any failure or a non-2xx status.
async fn exchange(
    slot: &Slot,
    addr: std::net::SocketAddr,
    bind: Option<IpAddr>,
    session: Option<rustls::ClientConnection>,
    request: &[u8],
) -> Option<Response> {
    let (socket, in_progress) = sys::start_connect(addr, bind).ok()?;
    let mut conn = Conn::new(TcpStream::from_std(socket).ok()?, slot);
    let fd = conn.stream.as_raw_fd();
    if in_progress {
        conn.stream.writable(false).await.ok()?;
        if sys::socket_error(fd).is_some() {
            return None;
        }
    }
    conn.tls = session.map(wire::Tls::new);
    // The TLS handshake if any, then the request, each step waiting on the socket as it must.
    let mut written = 0;
    loop {
        let step = match conn.tls.as_mut() {
            Some(tls) if tls.is_handshaking() => wire::handshake(fd, tls, None),
            tls => match wire::write(fd, tls, [request, &[]], &mut written) {
                Step::Done => break,
                other => other,
            },
        };
        match step {
            Step::Done => {}
            Step::Wait(Want::Write) => conn.stream.writable(false).await.ok()?,
            Step::Wait(Want::Read) => conn.stream.readable(false).await.ok()?,
            Step::Failed(_) => return None,
        }
    }
    let mut response = Response::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Not carried over: after a wait, the socket is worth reading again.
        let mut drained = false;
        let state = match wire::read(fd, conn.tls.as_mut(), &mut buf, &mut drained, None) {
            wire::Read::Data(n) => response.on_bytes(&buf[..n]),
            wire::Read::Eof => response.on_eof(),
            wire::Read::Wait => {
                conn.stream.readable(false).await.ok()?;
                continue;
            }
            wire::Read::Failed(_) => return None,
        };
        match state {
            Exchange::NeedMore => {}
            Exchange::Done { status } => return (200..300).contains(&status).then_some(response),
            Exchange::Failed(_) => return None,
        }
    }
}

/// `--scenario`: after user `index`'s stream `seq` ended, moves its journey on. A completed turn adds its user
/// message and answer to the conversation; any other end starts the journey over. True while the journey goes on.
pub(crate) fn after_turn(ctx: &CoreCtx, index: usize, seq: u32, end: StreamEnd, machine: &mut StreamMachine) -> bool {
    let turns = ctx.shared.cfg.llm.as_ref().map_or(0, |l| l.turns()) as u32;
    let vu = ctx.vu(&ctx.slots[index], index);
    let mut journey = ctx.journeys[index].borrow_mut();
    if end != StreamEnd::Completed {
        journey.turn = 0;
        return false;
    }
    let target = ctx.endpoint(index).0;
    if let (TargetRequest::Template(template), Some(timeline)) = (&ctx.shared.requests[target], machine.llm()) {
        let JourneyState { turn, history, extracted } = &mut *journey;
        let state = Journey { turn: Some(u64::from(*turn)), history: &[], extracted };
        template.append_turn(vu, u64::from(seq), &state, &timeline.answer, history);
    }
    journey.turn += 1;
    if journey.turn >= turns {
        journey.turn = 0;
        return false;
    }
    true
}
