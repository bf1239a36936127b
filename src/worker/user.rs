//! A virtual user's task: one stream at a time (an `Attempt`, with `--scenario` around its journey's turns), the
//! only await sites of a stream, the pauses between streams, and the count of each stream's end.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::MAX_ANSWER_BYTES;
use crate::recorder::{Failure, StreamEnd};
use crate::stream::StreamMachine;
use crate::streams_log::{ABSENT, StreamRecord};
use crate::units::micros_between;
use crate::worker::attempt::{Attempt, Interest, Next};
use crate::worker::core::{Conn, CoreCtx, Expiry, Pause, Rest};
use crate::worker::journey::{BeforeTurn, after_turn, before_turn};

/// Pause before the next stream after one that failed without ever waiting.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);

/// A virtual user: one stream at a time, the next as soon as the last ends. In the open model
/// (`--arrival-rate`) it runs the one stream its slot was given, timed from its scheduled start.
///
/// The only await sites of a stream are here, so the task holds one readiness future at a time;
/// everything between two waits is the synchronous [`Attempt::advance`].
pub(crate) async fn virtual_user(ctx: Rc<CoreCtx>, index: usize) {
    let slot = &ctx.slots[index];
    let cfg = &ctx.shared.cfg;
    let open_model = ctx.shared.open_model;
    let mut machine = StreamMachine::new(cfg.max_event_size_bytes);
    if cfg.reconnect || cfg.verify_seq {
        machine.track_ids(cfg.verify_seq, cfg.reconnect);
    }
    machine.follow_redirects(cfg.max_redirects);
    if cfg.llm.is_some() {
        machine.enable_llm(if ctx.journeys.is_empty() { 0 } else { MAX_ANSWER_BYTES });
    }
    let mut conn: Option<Conn<'_>> = None;
    // This user's streams so far: `{{seq}}`.
    let mut seq = 0u32;
    loop {
        // `ctx.shared.cfg`, not `cfg`: a reference kept across the awaits below would be 8 more bytes in every user.
        if ctx.shared.cfg.reconnect && seq > 0 {
            let retry = machine.retry_ms().map_or(ctx.shared.cfg.retry_default, Duration::from_millis);
            // A `Pause` the sweeper ends: no timer per user, and nothing allocated per reconnect.
            if !wait_to_reconnect(&ctx, index, retry).await {
                break;
            }
        }
        // An arrival's first stream was admitted by `drive_arrivals`, and is timed from its schedule; not so a
        // journey's streams, which come after its steps or think times.
        let admitted = open_model && seq == 0;
        let scheduled = admitted && ctx.journeys.is_empty();
        // Users failing at once in a loop can postpone the sweeper: see `run_over`.
        if !admitted
            && (ctx.run_over(Instant::now()) || !ctx.may_start(index) || !ctx.core.borrow_mut().take_stream_slot())
        {
            break;
        }
        if !ctx.journeys.is_empty() {
            // Boxed: steps and think times come once per turn, and every byte here is in every user.
            match Box::pin(before_turn(&ctx, index, seq)).await {
                BeforeTurn::Stream => {}
                BeforeTurn::Retry if open_model => break,
                BeforeTurn::Retry => {
                    Pause::new(&ctx, slot, FAILURE_PAUSE).await;
                    continue;
                }
                BeforeTurn::Stop => break,
            }
            let turn = ctx.journeys[index].borrow().turn as usize;
            if let Some(llm) = machine.llm() {
                llm.set_turn(Some(turn));
            }
        }
        let opened_at = if scheduled {
            // Timed from the schedule, not from when this task got to run.
            let due = ctx.timing.start + Duration::from_micros(slot.due_us.get());
            machine.begin(due);
            due
        } else {
            Instant::now()
        };
        {
            let mut core = ctx.core.borrow_mut();
            core.rec.level_until(ctx.sample_tick(Instant::now()));
            core.rec.stream_opened();
            if let Some(facts) = core.stream_facts(index) {
                *facts = StreamRecord::EMPTY;
            }
        }
        let mut attempt = Attempt::new(conn.is_some(), index, seq, scheduled);
        seq = seq.wrapping_add(1);
        let mut end = loop {
            let interest = match attempt.advance(&ctx, slot, &mut conn, &mut machine) {
                Next::Done(end) => break end,
                Next::Wait(interest) => interest,
            };
            attempt.waited = true;
            let Some(live) = conn.as_ref() else {
                unreachable!("a wait needs a connection");
            };
            let (woke, suspended) = match interest {
                Interest::Read => Noting::new(live.stream.readable(false), true).await,
                Interest::Drained => Noting::new(live.stream.readable_drained(), true).await,
                Interest::Write => Noting::new(live.stream.writable(false), false).await,
                // Boxed: only a request larger than the socket takes at once waits to be written.
                Interest::ReadOrWrite => Noting::new(Box::pin(readable_or_writable(&live.stream)), false).await,
                // The read budget is spent: rest until the runtime has had a turn at its timers and IO.
                Interest::Yield => {
                    Rest::new(&ctx).await;
                    (Ok(()), true)
                }
            };
            if suspended {
                attempt.rested();
            }
            attempt.wake_error = woke.err();
        };
        slot.disarm();
        // A socket the sweeper shut down failed for the sweeper's reason, not the one it showed.
        let expiry = slot.expired.take();
        if let Some(expiry) = expiry {
            end = expiry.end();
            conn = None;
        }
        let ended = Ended { index, seq: seq.wrapping_sub(1), opened_at, requested: attempt.requested, end };
        record_end(&ctx, &mut machine, ended, expiry == Some(Expiry::SessionEnd));
        // In the open model an arrival is one stream, or with --scenario one journey.
        let journey_on = !ctx.journeys.is_empty() && after_turn(&ctx, index, seq.wrapping_sub(1), end, &mut machine);
        // 204 No Content tells a browser to stop reconnecting, so a reconnecting user stops: its slot idles to the end.
        let told_to_stop = ctx.shared.cfg.reconnect && !open_model && end.stops_reconnecting();
        if told_to_stop {
            ctx.core.borrow_mut().rec.users_stopped_by_204 += 1;
        }
        if told_to_stop || end == StreamEnd::Interrupted || (open_model && !journey_on) {
            break;
        }
        if attempt.waited {
            // Give the other tasks their turn before the next stream.
            YieldNow(false).await;
        } else {
            // The stream failed before any wait (no free port, no descriptor): retrying at once
            // would spin, and monoio reaps completions and fires timers only when its run queue
            // drains, so the healthy streams would starve and their figures lie. The sweeper ends
            // the pause (a monoio Sleep would double the size of every user).
            Pause::new(&ctx, slot, FAILURE_PAUSE).await;
        }
    }
    drop(conn);
    slot.running.set(false);
    if open_model {
        ctx.core.borrow_mut().free_slots.push(index);
    }
}

/// Waits `retry` before a reconnect and counts it; false if the run ended meanwhile, or a
/// `--stages` step down stopped this user.
async fn wait_to_reconnect(ctx: &CoreCtx, index: usize, retry: Duration) -> bool {
    let from = Instant::now();
    if !Pause::new(ctx, &ctx.slots[index], retry).await || !ctx.may_start(index) {
        return false;
    }
    let mut core = ctx.core.borrow_mut();
    core.rec.reconnects += 1;
    core.rec.histograms.reconnect_delay_us.saturating_record(micros_between(from, Instant::now()));
    true
}

pub(crate) fn spawn_user(ctx: &Rc<CoreCtx>, local: usize) -> monoio::task::JoinHandle<()> {
    ctx.slots[local].running.set(true);
    monoio::spawn(virtual_user(ctx.clone(), local))
}

/// One stream's end, as `record_end` counts it.
struct Ended {
    /// The user (its slot) and its stream number.
    index: usize,
    seq: u32,
    opened_at: Instant,
    /// The request started: the machine's clock and count belong to this stream.
    requested: bool,
    end: StreamEnd,
}

/// Counts one stream's end. The machine's clock and count belong to this stream only if its
/// request started (`requested`); else it is timed from `opened_at`.
fn record_end(ctx: &CoreCtx, machine: &mut StreamMachine, ended: Ended, reached_length: bool) {
    let Ended { index, seq, opened_at, requested, end } = ended;
    let now = Instant::now();
    let mut core = ctx.core.borrow_mut();
    let rec = &mut core.rec;
    let mut tokens = None;
    if requested && let (Some(timeline), Some(llm_rec)) = (machine.llm(), rec.llm.as_deref_mut()) {
        let failed = matches!(end, StreamEnd::Failed(_));
        tokens = Some(timeline.finish(now, end == StreamEnd::Completed, failed, llm_rec));
    }
    if requested && machine.events() >= 2 {
        rec.histograms.max_gap_us.saturating_record(machine.max_gap_us());
    }
    // Cut by the connection after the head (a stream the server ended by its framing is complete, however early:
    // a proxy's timeout ends a chunked body without its last chunk, or resets).
    let cut_short = matches!(end, StreamEnd::Failed(Failure::PrematureEof | Failure::Reset | Failure::Io));
    if requested && cut_short && machine.head_seen() {
        rec.record_cut(micros_between(machine.request_start(), now), micros_between(machine.quiet_since(), now));
    }
    if requested && ctx.shared.cfg.stream_duration.is_some() && end != StreamEnd::Interrupted && !reached_length {
        // Ended before its intended length: by the server, a proxy, or an error.
        rec.histograms.premature_end_us.saturating_record(micros_between(machine.request_start(), now));
    }
    let from = if requested { machine.request_start() } else { opened_at };
    let events = if requested { machine.events() } else { 0 };
    let stream_us = micros_between(from, now);
    rec.level_until(ctx.sample_tick(now));
    rec.stream_closed(end, stream_us, events);
    if let Some(log) = core.streams_log.as_deref_mut() {
        let mut record = log.current[index];
        record.vu = ctx.vu(&ctx.slots[index], index);
        (record.stream, record.start_us, record.end) = (seq, micros_between(ctx.timing.start, from), end);
        (record.stream_us, record.events) = (stream_us, events);
        record.max_gap_us = if events >= 2 { machine.max_gap_us() } else { ABSENT };
        if let Some(tokens) = tokens {
            record.ttft_us = tokens.ttft_us.unwrap_or(ABSENT);
            record.input_tokens = tokens.input_tokens.unwrap_or(ABSENT);
            (record.output_tokens, record.tokens_from_usage) = (tokens.output_tokens, tokens.from_usage);
        }
        log.push(record);
    }
}

/// A readiness wait that also says whether the task was suspended on it (it returned Pending): on epoll, a wait on
/// a socket with data waiting completes at once, without giving the others a turn.
///
/// With `woken_means_ready` (reads) it takes being woken as the answer: once the wait has pended, the next poll is
/// Ready without asking the wait again, and the read that follows finds out (a spurious wake-up reads nothing and
/// waits again). Asking again costs a `poll(2)` per event on the epoll driver (monoio's strict readiness check after
/// the wake-up) and a pass through the op's bookkeeping on io_uring; the wait is dropped instead, which on io_uring
/// frees its completed operation and on epoll leaves its waker to the next. The check *before* the wait is the
/// other `poll(2)` per event: `Interest::Drained` waits with `readable_drained` (vendor/monoio/PATCH.md), which
/// skips it after a read that found the socket empty. Not for writes: a connect's wait must not take a stray
/// wake-up for the handshake's end.
struct Noting<F> {
    wait: F,
    pended: bool,
    woken_means_ready: bool,
}

impl<F> Noting<F> {
    fn new(wait: F, woken_means_ready: bool) -> Noting<F> {
        Noting { wait, pended: false, woken_means_ready }
    }
}

impl<F: std::future::Future<Output = std::io::Result<()>>> std::future::Future for Noting<F> {
    type Output = (std::io::Result<()>, bool);

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        // SAFETY: the inner future is never moved out of the pinned `Noting`, which has no Drop of its own.
        let this = unsafe { self.get_unchecked_mut() };
        if this.pended && this.woken_means_ready {
            return std::task::Poll::Ready((Ok(()), true));
        }
        // SAFETY: `this.wait` is pinned as long as `this` is.
        match unsafe { std::pin::Pin::new_unchecked(&mut this.wait) }.poll(cx) {
            std::task::Poll::Ready(output) => std::task::Poll::Ready((output, this.pended)),
            std::task::Poll::Pending => {
                this.pended = true;
                std::task::Poll::Pending
            }
        }
    }
}

/// Ready when `stream` is readable or writable, with what that wait returned.
async fn readable_or_writable(stream: &monoio::net::TcpStream) -> std::io::Result<()> {
    let mut readable = std::pin::pin!(stream.readable(false));
    let mut writable = std::pin::pin!(stream.writable(false));
    std::future::poll_fn(|cx| match readable.as_mut().poll(cx) {
        std::task::Poll::Pending => writable.as_mut().poll(cx),
        ready => ready,
    })
    .await
}

/// Returns Pending once (after asking to be polled again), then Ready: a turn for the others.
pub(crate) struct YieldNow(pub(crate) bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
