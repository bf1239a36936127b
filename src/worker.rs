//! One core's share of a run: its virtual users, their sockets, and its recorder. The only client code that awaits IO.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::config::{MAX_ANSWER_BYTES, RunConfig, Target};
use crate::http1::exchange::{Exchange, Response};
use crate::plan::{self, Shard};
use crate::recorder::{Failure, LlmRecorder, Recorder, StreamEnd};
use crate::signal;
use crate::stream::{Progress, StreamMachine, micros_between};
use crate::sys;
use crate::template::{Journey, RequestTemplate, TargetRequest};
use crate::wire::{self, Step, Want};

/// Bytes one `recv` may return; one buffer per core, shared by all its streams.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads per readiness wake-up, so one fast stream cannot starve the others on its core.
const READS_PER_WAKE: usize = 16;
/// Samples reserved up front: one day at one per 100 ms.
const MAX_RESERVED_SAMPLES: usize = 24 * 3600 * 10;
/// Pause before the next stream after one that failed without ever waiting.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// How often the sweeper checks pending connects against `--connect-timeout`.
const SWEEP_PERIOD: Duration = Duration::from_millis(10);
/// How often each core samples its open-stream count for the cross-core peak.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// What every worker shares read-only.
pub struct RunShared {
    pub cfg: RunConfig,
    /// One request per target: encoded once, or a template rendered for each stream.
    pub requests: Vec<TargetRequest>,
    /// `--scenario`: each target's HTTP step requests, in step order, and where each step goes when its path is
    /// a URL of its own (else to the user's target).
    pub steps: Vec<Vec<RequestTemplate>>,
    pub step_targets: Vec<Option<Target>>,
    /// `--scenario`: for each step, the index in a journey's `extracted` of each value it extracts.
    pub extract_slots: Vec<Vec<usize>>,
}

/// A user's place in its `--scenario` journey. One per user, allocated up front; the buffers grow with the
/// conversation (bounded by turns x (prompt + `MAX_ANSWER_BYTES`)).
#[derive(Debug, Default)]
struct JourneyState {
    /// The turn the next stream is (index 0 is turn 1); 0 also means the journey starts over.
    turn: u32,
    /// The conversation so far: chat message objects joined by commas.
    history: Vec<u8>,
    /// Values the HTTP steps extracted, by the scenario's variable index.
    extracted: Vec<Vec<u8>>,
}

/// What a journey does before its next stream.
enum BeforeTurn {
    Stream,
    /// A step failed: pause, then start the journey over.
    Retry,
    /// The run is over.
    Stop,
}

/// The run's clock, handed to every worker once all of them are ready.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The common start: connect-rate offsets and samples count from it.
    pub start: Instant,
    pub deadline: Option<Instant>,
}

/// Why the sweeper shut a virtual user's socket down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    ConnectTimeout,
    TlsHandshakeTimeout,
    HeaderTimeout,
    FirstEventTimeout,
    IdleTimeout,
    ByteIdleTimeout,
    /// The stream reached its `--stream-duration`: closed on purpose, a completed stream.
    SessionEnd,
    /// The run's duration is over, or Ctrl-C.
    RunOver,
    /// A `--stages` step down: the generator closed the stream on purpose.
    StageEnd,
}

impl Expiry {
    /// How the stream it cut ends.
    fn end(self) -> StreamEnd {
        match self {
            Expiry::ConnectTimeout => StreamEnd::Failed(Failure::ConnectTimeout),
            Expiry::TlsHandshakeTimeout => StreamEnd::Failed(Failure::TlsHandshakeTimeout),
            Expiry::HeaderTimeout => StreamEnd::Failed(Failure::HeaderTimeout),
            Expiry::FirstEventTimeout => StreamEnd::Failed(Failure::FirstEventTimeout),
            Expiry::IdleTimeout => StreamEnd::Failed(Failure::IdleTimeout),
            Expiry::ByteIdleTimeout => StreamEnd::Failed(Failure::ByteIdleTimeout),
            Expiry::SessionEnd => StreamEnd::Completed,
            Expiry::RunOver | Expiry::StageEnd => StreamEnd::Interrupted,
        }
    }
}

/// A virtual user's control block, read by its task and by the core's sweeper. Plain `Cell`s:
/// either side may touch it between any two await points, and both run on this core's thread.
struct Slot {
    /// The socket the user holds now; -1 when none.
    fd: Cell<RawFd>,
    /// Milliseconds after the start when the current phase times out (connect, head, first
    /// event, next event), and which timeout that is; 0 when none applies.
    deadline_ms: Cell<u64>,
    deadline: Cell<Expiry>,
    /// Milliseconds after the start when the connection has gone too long without a byte; 0: none.
    byte_deadline_ms: Cell<u64>,
    /// Milliseconds after the start when the stream reaches its `--stream-duration`; 0: none.
    session_deadline_ms: Cell<u64>,
    expired: Cell<Option<Expiry>>,
    /// A task runs this user (or open-model stream) now.
    running: Cell<bool>,
    /// Open model: when this slot's stream is due, in µs after the start, and the arrival's
    /// run-wide number (its `{{vu}}`: each arrival is a new user).
    due_us: Cell<u64>,
    arrival: Cell<u64>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            fd: Cell::new(-1),
            deadline_ms: Cell::new(0),
            deadline: Cell::new(Expiry::ConnectTimeout),
            byte_deadline_ms: Cell::new(0),
            session_deadline_ms: Cell::new(0),
            expired: Cell::new(None),
            running: Cell::new(false),
            due_us: Cell::new(0),
            arrival: Cell::new(0),
        }
    }

    /// Arms the phase timeout `kind` to fire `after` from `now`, or clears it when `after` is None.
    fn arm(&self, ctx: &CoreCtx, kind: Expiry, now: Instant, after: Option<Duration>) {
        self.deadline.set(kind);
        self.deadline_ms.set(ctx.deadline_ms(now, after));
    }

    /// Clears every deadline (the stream is over, or expired).
    fn disarm(&self) {
        self.deadline_ms.set(0);
        self.byte_deadline_ms.set(0);
        self.session_deadline_ms.set(0);
    }

    fn expire(&self, kind: Expiry) {
        self.disarm();
        self.expired.set(Some(kind));
        sys::shutdown(self.fd.get());
    }
}

/// A connection registered in its user's slot so the sweeper can shut it down. The slot is
/// cleared before the descriptor closes, so a descriptor number reused by another socket (on any
/// core) is never touched.
struct Conn<'s> {
    stream: TcpStream,
    slot: &'s Slot,
    /// `https://`: the TLS session on this connection. Boxed: rustls's state is kilobytes, and plain streams
    /// should pay one pointer for it.
    tls: Option<Box<rustls::ClientConnection>>,
}

impl<'s> Conn<'s> {
    fn new(stream: TcpStream, slot: &'s Slot) -> Conn<'s> {
        slot.fd.set(stream.as_raw_fd());
        Conn { stream, slot, tls: None }
    }
}

/// The TLS session of the connection, if it has one.
fn tls_of<'c>(conn: &'c mut Option<Conn<'_>>) -> Option<&'c mut rustls::ClientConnection> {
    conn.as_mut().and_then(|c| c.tls.as_deref_mut())
}

/// The descriptor of the connection, or -1 (calls on it then fail with EBADF) when there is none.
fn raw_fd(conn: &Option<Conn<'_>>) -> RawFd {
    conn.as_ref().map_or(-1, |c| c.stream.as_raw_fd())
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        self.slot.fd.set(-1);
    }
}

/// The per-core mutable state. One `RefCell` borrow per read; never held across an await.
struct Core {
    rec: Recorder,
    scratch: Box<[u8]>,
    /// A request with a `Last-Event-ID` header, built here for each write (`--reconnect`).
    request_buf: Vec<u8>,
    /// A templated request rendered for one stream, and its body (rendered first, for its length).
    render_buf: Vec<u8>,
    body_buf: Vec<u8>,
    /// Streams this core may still start; `None` is unlimited.
    streams_left: Option<u64>,
    /// Users `0..user_limit` may start streams; the others end at their next start (`--stages`).
    user_limit: usize,
    /// `--stages`: recorders for the stages to come (allocated up front) and the finished ones.
    spare_recs: Vec<Recorder>,
    done_recs: Vec<Recorder>,
    /// `--arrival-rate`: slots with no stream, taken by arrivals.
    free_slots: Vec<usize>,
    /// Connects waiting for their TCP or TLS handshake, so the sweeper scans only when there are some.
    connecting: u32,
    /// The run is over: no new streams.
    stopping: bool,
    finished: bool,
}

impl Core {
    fn take_stream_slot(&mut self) -> bool {
        match &mut self.streams_left {
            None => true,
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
        }
    }
}

/// What a core's tasks share. Virtual users hold one `Rc` of it and their index: no timers of
/// their own (a monoio `Sleep` is 640 bytes), so an idle user costs little more than its parser.
struct CoreCtx {
    core: RefCell<Core>,
    /// This core's place among `threads`: user `local` here is user `local * threads + core_index`
    /// of the run, which picks its target and source address.
    core_index: usize,
    threads: usize,
    slots: Box<[Slot]>,
    /// `--scenario`: one journey per slot; empty otherwise.
    journeys: Box<[RefCell<JourneyState>]>,
    shared: Arc<RunShared>,
    timing: Timing,
}

impl CoreCtx {
    /// Target index and source address of this core's user `local`: targets rotate fastest, so
    /// every (source, target) pair gets its share of users and of ports.
    fn endpoint(&self, local: usize) -> (usize, Option<IpAddr>) {
        let cfg = &self.shared.cfg;
        let global = self.global_index(local);
        let target = global % cfg.targets.len();
        let bind = match cfg.bind_addrs.len() {
            0 => None,
            n => Some(cfg.bind_addrs[(global / cfg.targets.len()) % n]),
        };
        (target, bind)
    }

    /// This stream's `--stream-duration`: a range is drawn from uniformly, to the millisecond,
    /// from a hash of `--seed`, the user and its stream number (no state per user; the same
    /// seed draws the same lengths).
    fn stream_length(&self, slot: &Slot, local: usize, seq: u32) -> Option<Duration> {
        let (low, high) = self.shared.cfg.stream_duration?;
        Some(crate::rng::uniform_duration(low, high, self.shared.cfg.seed, self.vu(slot, local), seq))
    }

    /// User `local` may start a stream: `--stages` has not stepped down past it.
    fn may_start(&self, local: usize) -> bool {
        local < self.core.borrow().user_limit
    }

    /// `{{vu}}` of the stream in `slot`: the run-wide user index, or in the open model the
    /// arrival's number.
    fn vu(&self, slot: &Slot, local: usize) -> u64 {
        if self.shared.cfg.arrivals.is_some() { slot.arrival.get() } else { self.global_index(local) as u64 }
    }

    /// Whose TLS session user `local`'s connections resume and keep: its run-wide index. None in the open
    /// model, where every arrival is a new user with nothing to resume.
    fn tls_user(&self, local: usize) -> Option<u64> {
        self.shared.cfg.arrivals.is_none().then(|| self.global_index(local) as u64)
    }

    /// The run-wide index of this core's user `local`.
    fn global_index(&self, local: usize) -> usize {
        local * self.threads + self.core_index
    }

    /// No new stream or connection may start at `now`: the sweeper stopped the run, or its
    /// deadline passed (checked directly too: timers fire only when the run queue drains).
    fn run_over(&self, now: Instant) -> bool {
        self.core.borrow().stopping || self.timing.deadline.is_some_and(|d| now >= d)
    }

    fn ms_since_start(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.timing.start).as_millis() as u64
    }

    /// A slot deadline `after` from `now`, in ms since the start (never 0, which means none);
    /// 0 when `after` is None.
    fn deadline_ms(&self, now: Instant, after: Option<Duration>) -> u64 {
        after.map_or(0, |after| self.ms_since_start(now + after).max(1))
    }
}

/// Runs a shard to its end (quota used up or deadline passed) and returns its recorders: one per
/// `--stages` stage, or one for the whole run.
///
/// Everything the core needs is allocated first; then it reports `ready` and blocks until the
/// engine sends the run's clock (after measuring memory with nothing connected). Blocking is
/// fine there: nothing else runs on this runtime yet.
pub async fn run(shard: Shard, shared: Arc<RunShared>, ready: Sender<()>, go: Receiver<Timing>) -> Vec<Recorder> {
    let new_recorder = || {
        let mut rec = Recorder::new();
        if let Some(stall) = shared.cfg.stall_threshold {
            rec.stall_threshold_us = stall.as_micros() as u64;
        }
        if let Some(llm) = &shared.cfg.llm {
            rec.llm = Some(Box::new(LlmRecorder::new(llm.turns(), llm.step_names().len())));
        }
        // Room for every sample of the run, so sampling never allocates mid-run. Capped: a run
        // of days reserves a day and grows past it (once per 100 ms, not per event).
        let run_length = match shared.cfg.stages.last() {
            Some(_) => plan::stage_windows(&shared.cfg.stages, shared.cfg.connect_rate_per_s).last().map(|w| w.end),
            None => shared.cfg.duration,
        };
        if let Some(length) = run_length {
            let samples = (length.as_nanos() / SAMPLE_PERIOD.as_nanos()) as usize + 2;
            rec.active_samples.reserve(samples.min(MAX_RESERVED_SAMPLES));
        }
        rec
    };
    let stages = shard.stage_users.len().max(1);
    let core = Core {
        rec: new_recorder(),
        scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
        request_buf: Vec::with_capacity(shared.requests.iter().map(encoded_len).max().unwrap_or(0) + 64),
        render_buf: Vec::new(),
        body_buf: Vec::new(),
        streams_left: shard.streams_quota,
        user_limit: shard.virtual_users,
        spare_recs: (1..stages).map(|_| new_recorder()).collect(),
        done_recs: Vec::with_capacity(stages),
        free_slots: (0..shard.virtual_users).rev().collect(),
        connecting: 0,
        stopping: false,
        finished: false,
    };
    let slots: Box<[Slot]> = (0..shard.virtual_users).map(|_| Slot::new()).collect();
    let journey_users =
        if shared.cfg.llm.as_ref().is_some_and(|l| l.scenario.is_some()) { shard.virtual_users } else { 0 };
    let variables = shared.cfg.llm.as_ref().map_or(0, |l| l.variables().len());
    let journeys = (0..journey_users)
        .map(|_| RefCell::new(JourneyState { extracted: vec![Vec::new(); variables], ..JourneyState::default() }))
        .collect();
    let _ = ready.send(());
    let Ok(timing) = go.recv() else {
        // The engine gave up before the start (another worker failed to start).
        return vec![core.rec];
    };
    let ctx = Rc::new(CoreCtx {
        core: RefCell::new(core),
        core_index: shard.core_index,
        threads: shard.threads,
        slots,
        journeys,
        shared,
        timing,
    });
    monoio::spawn(sample_active(ctx.clone()));
    monoio::spawn(sweep(ctx.clone()));
    match &shard.arrivals {
        Some(clock) => drive_arrivals(&ctx, clock.clone()).await,
        None if !shard.stage_users.is_empty() => drive_stages(&ctx, &shard.stage_users).await,
        None => drive_users(&ctx, &shard).await,
    }
    let mut core = ctx.core.borrow_mut();
    core.finished = true;
    let tick = timing.start.elapsed().as_nanos() / SAMPLE_PERIOD.as_nanos();
    core.rec.sample_active(tick as usize);
    let last = std::mem::take(&mut core.rec);
    let mut recorders = std::mem::take(&mut core.done_recs);
    recorders.push(last);
    recorders
}

/// Sleeps until `at`; false if the run ended first (its deadline, or Ctrl-C: noticed within
/// 100 ms, however far off `at` is, so a slow ramp cannot hold the report back).
async fn wait_until(ctx: &CoreCtx, at: Instant) -> bool {
    const STEP: Duration = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        if ctx.run_over(now) {
            return false;
        }
        if now >= at {
            return true;
        }
        monoio::time::sleep_until(at.min(now + STEP).into()).await;
    }
}

/// The closed model: every virtual user runs from the start (or from its `--connect-rate` turn)
/// to the end.
async fn drive_users(ctx: &Rc<CoreCtx>, shard: &Shard) {
    let timing = ctx.timing;
    let mut users = Vec::with_capacity(shard.virtual_users);
    for local in 0..shard.virtual_users {
        // With --connect-rate, users are spawned when their turn comes: a waiting user costs nothing.
        if let Some(offset) = shard.first_start_offsets.get(local) {
            let start_at = timing.start + *offset;
            if timing.deadline.is_some_and(|d| start_at >= d) {
                break;
            }
            if !wait_until(ctx, start_at).await {
                break;
            }
        }
        users.push(spawn_user(ctx, local));
    }
    for user in users {
        user.await;
    }
}

fn spawn_user(ctx: &Rc<CoreCtx>, local: usize) -> monoio::task::JoinHandle<()> {
    ctx.slots[local].running.set(true);
    monoio::spawn(virtual_user(ctx.clone(), local))
}

/// `--stages`: at each stage's start, switch to its recorder, close the users a step down
/// removes, and start the ones a step up adds (at `--connect-rate`).
async fn drive_stages(ctx: &Rc<CoreCtx>, stage_users: &[usize]) {
    let cfg = &ctx.shared.cfg;
    let windows = plan::stage_windows(&cfg.stages, cfg.connect_rate_per_s);
    let mut users: Vec<Option<monoio::task::JoinHandle<()>>> = (0..ctx.slots.len()).map(|_| None).collect();
    let mut running = 0;
    'stages: for (stage, (window, &target)) in windows.iter().zip(stage_users).enumerate() {
        let stage_start = ctx.timing.start + window.start;
        if !wait_until(ctx, stage_start).await {
            break;
        }
        if stage > 0 {
            let mut core = ctx.core.borrow_mut();
            let fresh = core.spare_recs.pop().expect("a recorder is allocated for every stage");
            let done = core.rec.next_stage(fresh);
            core.done_recs.push(done);
        }
        ctx.core.borrow_mut().user_limit = target;
        // A step down: the users past the target stop; an open stream is closed now (counted as
        // open at the end of its stage, not as a failure), an idle user stops at its next start.
        for slot in ctx.slots.iter().take(running).skip(target).filter(|s| s.fd.get() >= 0) {
            slot.expire(Expiry::StageEnd);
        }
        let first_new = running.min(target);
        for (local, user) in users.iter_mut().enumerate().take(target).skip(first_new) {
            let global = ctx.global_index(local);
            let start_at = stage_start + plan::stage_start_offset(window, global, cfg.connect_rate_per_s);
            if !wait_until(ctx, start_at).await {
                break 'stages;
            }
            // A user stopped by an earlier step down may still be winding down; it carries on.
            if !ctx.slots[local].running.get() {
                *user = Some(spawn_user(ctx, local));
            }
        }
        running = target;
    }
    for user in users.into_iter().flatten() {
        user.await;
    }
}

/// The open model: a stream starts at each arrival, whether or not earlier ones have ended, in
/// a free slot; with every slot (`--max-streams`) busy the arrival is dropped and counted.
async fn drive_arrivals(ctx: &Rc<CoreCtx>, mut clock: plan::ArrivalClock) {
    /// Arrivals handled between two turns for the other tasks, when a backlog of due arrivals
    /// never lets this task sleep: the users and the sweeper must keep running meanwhile.
    const ARRIVALS_PER_TURN: u64 = 32;
    let mut streams: Vec<Option<monoio::task::JoinHandle<()>>> = (0..ctx.slots.len()).map(|_| None).collect();
    loop {
        let (number, offset) = clock.next_arrival();
        if number % (ARRIVALS_PER_TURN * ctx.threads as u64) == ctx.core_index as u64 && number > 0 {
            YieldNow(false).await;
        }
        let due = ctx.timing.start + offset;
        if ctx.timing.deadline.is_some_and(|d| due >= d) {
            break;
        }
        if !wait_until(ctx, due).await {
            break;
        }
        // Arrivals that fell due while this task waited for its turn start now, late: their
        // lag is measured, and their latencies count from `due`.
        let now = Instant::now();
        let mut core = ctx.core.borrow_mut();
        if !core.take_stream_slot() {
            break;
        }
        let Some(index) = core.free_slots.pop() else {
            core.rec.start_dropped();
            continue;
        };
        core.rec.start_on_schedule(micros_between(due, now));
        drop(core);
        ctx.slots[index].due_us.set(micros_between(ctx.timing.start, due));
        ctx.slots[index].arrival.set(number);
        // The previous stream in this slot has returned it, so its task is done.
        streams[index] = Some(spawn_user(ctx, index));
    }
    for stream in streams.into_iter().flatten() {
        stream.await;
    }
}

async fn sample_active(ctx: Rc<CoreCtx>) {
    let start = ctx.timing.start;
    let mut tick = 0usize;
    loop {
        tick += 1;
        monoio::time::sleep_until((start + SAMPLE_PERIOD * tick as u32).into()).await;
        let mut core = ctx.core.borrow_mut();
        if core.finished {
            return;
        }
        // A late wake-up records under the tick it belongs to, keeping cores aligned.
        let now_tick = start.elapsed().as_nanos() / SAMPLE_PERIOD.as_nanos();
        tick = tick.max(now_tick as usize);
        core.rec.sample_active(tick);
    }
}

/// The core's one timer for its users: shuts down streams whose phase timed out, and at the end
/// of the run (or on Ctrl-C) every open socket, which wakes whatever the user awaits on it.
async fn sweep(ctx: Rc<CoreCtx>) {
    let cfg = &ctx.shared.cfg;
    let stream_timeouts = cfg.header_timeout.is_some()
        || cfg.first_event_timeout.is_some()
        || cfg.idle_timeout.is_some()
        || cfg.byte_idle_timeout.is_some()
        || cfg.stream_duration.is_some();
    loop {
        let next = Instant::now() + SWEEP_PERIOD;
        let wake = ctx.timing.deadline.map_or(next, |d| d.min(next));
        monoio::time::sleep_until(wake.into()).await;
        if ctx.core.borrow().finished {
            return;
        }
        let now = Instant::now();
        if ctx.timing.deadline.is_some_and(|d| now >= d) || signal::interrupted() {
            let mut core = ctx.core.borrow_mut();
            core.stopping = true;
            core.rec.open_at_end = core.rec.active;
            drop(core);
            for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
                slot.expire(Expiry::RunOver);
            }
            return;
        }
        // Without stream timeouts only pending connects can expire: skip the scan when none is.
        if !stream_timeouts && ctx.core.borrow().connecting == 0 {
            continue;
        }
        let now_ms = ctx.ms_since_start(now);
        let due = |deadline_ms: u64| deadline_ms != 0 && now_ms >= deadline_ms;
        for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
            if due(slot.deadline_ms.get()) {
                slot.expire(slot.deadline.get());
            } else if due(slot.byte_deadline_ms.get()) {
                slot.expire(Expiry::ByteIdleTimeout);
            } else if due(slot.session_deadline_ms.get()) {
                slot.expire(Expiry::SessionEnd);
            }
        }
    }
}

/// A virtual user: one stream at a time, the next as soon as the last ends. In the open model
/// (`--arrival-rate`) it runs the one stream its slot was given, timed from its scheduled start.
///
/// The only await sites of a stream are here, so the task holds one readiness future at a time;
/// everything between two waits is the synchronous [`Attempt::advance`].
async fn virtual_user(ctx: Rc<CoreCtx>, index: usize) {
    let slot = &ctx.slots[index];
    let cfg = &ctx.shared.cfg;
    let open_model = cfg.arrivals.is_some();
    let mut machine = StreamMachine::new(cfg.max_event_size_bytes);
    if cfg.reconnect || cfg.verify_seq {
        machine.track_ids(cfg.verify_seq);
    }
    if cfg.llm.is_some() {
        machine.enable_llm(if ctx.journeys.is_empty() { 0 } else { MAX_ANSWER_BYTES });
    }
    let mut conn: Option<Conn<'_>> = None;
    // This user's streams so far: `{{seq}}`.
    let mut seq = 0u32;
    loop {
        if cfg.reconnect && seq > 0 {
            let retry = machine.retry_ms().map_or(cfg.retry_default, Duration::from_millis);
            // Boxed: reconnects are rare next to events, and every byte here is in every user.
            if !Box::pin(wait_to_reconnect(&ctx, index, retry)).await {
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
                    Box::pin(monoio::time::sleep(FAILURE_PAUSE)).await;
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
        ctx.core.borrow_mut().rec.stream_opened();
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
            let woke = match interest {
                Interest::Read => live.stream.readable(false).await,
                Interest::Write => live.stream.writable(false).await,
                Interest::Yield => {
                    YieldNow(false).await;
                    Ok(())
                }
            };
            attempt.wake_error = woke.err();
        };
        slot.disarm();
        // A socket the sweeper shut down failed for the sweeper's reason, not the one it showed.
        let expiry = slot.expired.take();
        if let Some(expiry) = expiry {
            end = expiry.end();
            conn = None;
        }
        record_end(&ctx, &mut machine, opened_at, attempt.requested, end, expiry == Some(Expiry::SessionEnd));
        // In the open model an arrival is one stream, or with --scenario one journey.
        let journey_on = !ctx.journeys.is_empty() && after_turn(&ctx, index, seq.wrapping_sub(1), end, &mut machine);
        if end == StreamEnd::Interrupted || (open_model && !journey_on) {
            break;
        }
        if attempt.waited {
            // Give the other tasks their turn before the next stream.
            YieldNow(false).await;
        } else {
            // The stream failed before any wait (no free port, no descriptor): retrying at once
            // would spin, and monoio reaps completions and fires timers only when its run queue
            // drains, so the healthy streams would starve and their figures lie. The pause is
            // boxed: it is rare, and a monoio Sleep would double the size of every user.
            Box::pin(monoio::time::sleep(FAILURE_PAUSE)).await;
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
    if !wait_until(ctx, from + retry).await || !ctx.may_start(index) {
        return false;
    }
    let mut core = ctx.core.borrow_mut();
    core.rec.reconnects += 1;
    core.rec.histograms.reconnect_delay_us.saturating_record(micros_between(from, Instant::now()));
    true
}

/// `--scenario`: what comes before user `index`'s next stream. At a journey's start, the conversation starts over
/// and the HTTP steps run; before a later turn, the think time passes.
async fn before_turn(ctx: &CoreCtx, index: usize, seq: u32) -> BeforeTurn {
    let Some(llm) = &ctx.shared.cfg.llm else { return BeforeTurn::Stream };
    let Some(scenario) = &llm.scenario else { return BeforeTurn::Stream };
    let vu = ctx.vu(&ctx.slots[index], index);
    if ctx.journeys[index].borrow().turn > 0 {
        let (low, high) = scenario.conversation.think_time;
        if high.is_zero() {
            return BeforeTurn::Stream;
        }
        let think = crate::rng::uniform_duration(low, high, ctx.shared.cfg.seed, vu, seq);
        return if wait_until(ctx, Instant::now() + think).await { BeforeTurn::Stream } else { BeforeTurn::Stop };
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
    let to = ctx.shared.step_targets.get(step).and_then(Option::as_ref).unwrap_or(&cfg.targets[target]);
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
    session: Option<Box<rustls::ClientConnection>>,
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
    conn.tls = session;
    // The TLS handshake if any, then the request, each step waiting on the socket as it must.
    let mut written = 0;
    loop {
        let step = match conn.tls.as_deref_mut() {
            Some(tls) if tls.is_handshaking() => wire::handshake(fd, tls, None),
            tls => match wire::write(fd, tls, request, &mut written) {
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
        let state = match wire::read(fd, conn.tls.as_deref_mut(), &mut buf, &mut drained, None) {
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
fn after_turn(ctx: &CoreCtx, index: usize, seq: u32, end: StreamEnd, machine: &mut StreamMachine) -> bool {
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

/// Returns Pending once (after asking to be polled again), then Ready: a turn for the others.
struct YieldNow(bool);

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

/// Bytes of an encoded request (0 for a template: its buffers grow on first use).
fn encoded_len(request: &TargetRequest) -> usize {
    match request {
        TargetRequest::Encoded(bytes) => bytes.len(),
        TargetRequest::Template(_) => 0,
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

/// Counts one stream's end. The machine's clock and count belong to this stream only if its
/// request started (`requested`); else it is timed from `opened_at`.
fn record_end(
    ctx: &CoreCtx,
    machine: &mut StreamMachine,
    opened_at: Instant,
    requested: bool,
    end: StreamEnd,
    reached_length: bool,
) {
    let now = Instant::now();
    let mut core = ctx.core.borrow_mut();
    let rec = &mut core.rec;
    if requested && let (Some(timeline), Some(llm_rec)) = (machine.llm(), rec.llm.as_deref_mut()) {
        let failed = matches!(end, StreamEnd::Failed(_));
        timeline.finish(now, end == StreamEnd::Completed, failed, llm_rec);
    }
    if requested && machine.events() >= 2 {
        rec.histograms.max_gap_us.saturating_record(machine.max_gap_us());
    }
    if requested && ctx.shared.cfg.stream_duration.is_some() && end != StreamEnd::Interrupted && !reached_length {
        // Ended before its intended length: by the server, a proxy, or an error.
        rec.histograms.premature_end_us.saturating_record(micros_between(machine.request_start(), now));
    }
    let from = if requested { machine.request_start() } else { opened_at };
    let events = if requested { machine.events() } else { 0 };
    rec.stream_closed(end, micros_between(from, now), events);
}

impl From<Want> for Interest {
    fn from(want: Want) -> Interest {
        match want {
            Want::Read => Interest::Read,
            Want::Write => Interest::Write,
        }
    }
}

/// What a stream attempt waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interest {
    Read,
    Write,
    /// Nothing to wait for (TLS holds decrypted bytes the socket no longer has), but the others get a turn.
    Yield,
}

enum Next {
    Wait(Interest),
    Done(StreamEnd),
}

/// Where one stream attempt stands between two waits.
#[derive(Debug, Clone, Copy)]
enum Phase {
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
struct Attempt {
    phase: Phase,
    /// Running on a kept-alive connection: if it fails before any response byte, the server had
    /// closed it (its idle timeout raced our request). That is retried once on a new connection,
    /// as browsers and HTTP libraries do, and is not a failure of the stream.
    on_kept_alive: bool,
    /// What the last readiness wait returned, for the phase to judge.
    wake_error: Option<std::io::Error>,
    /// The user's index on this core (its target and source address follow from it).
    local: usize,
    /// The user's stream number, for templates.
    seq: u32,
    /// The attempt waited for readiness at least once.
    waited: bool,
    /// The request started: the machine's clock and events are this stream's.
    requested: bool,
    /// The machine's clock was started before the attempt (the open model's scheduled start).
    clock_started: bool,
}

impl Attempt {
    fn new(kept_alive: bool, local: usize, seq: u32, clock_started: bool) -> Attempt {
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
    fn advance<'s>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RunConfig, Target};

    fn ctx() -> Rc<CoreCtx> {
        let target =
            Target { addr: "127.0.0.1:1".parse().unwrap(), host_header: "h".into(), path: "/".into(), tls_name: None };
        let cfg = RunConfig { max_event_size_bytes: 1024, threads: 1, ..RunConfig::new(vec![target]) };
        let core = Core {
            rec: Recorder::new(),
            scratch: Box::new([]),
            request_buf: Vec::new(),
            render_buf: Vec::new(),
            body_buf: Vec::new(),
            streams_left: None,
            user_limit: 1,
            spare_recs: Vec::new(),
            done_recs: Vec::new(),
            free_slots: Vec::new(),
            connecting: 0,
            stopping: false,
            finished: false,
        };
        let timing = Timing { start: Instant::now(), deadline: None };
        let shared = Arc::new(RunShared {
            cfg,
            requests: vec![TargetRequest::Encoded(vec![])],
            steps: Vec::new(),
            step_targets: Vec::new(),
            extract_slots: Vec::new(),
        });
        Rc::new(CoreCtx {
            core: RefCell::new(core),
            core_index: 0,
            threads: 1,
            slots: vec![Slot::new()].into(),
            journeys: Box::new([]),
            shared,
            timing,
        })
    }

    /// Every open stream is one of these futures on the heap: its size is most of the
    /// generator's memory per stream, so it has a budget.
    #[test]
    fn virtual_user_future_stays_small() {
        let ctx = ctx();
        let user = virtual_user(ctx.clone(), 0);
        let size = std::mem::size_of_val(&user);
        eprintln!(
            "virtual_user future: {size} bytes; attempt {} phase {} machine {}",
            std::mem::size_of::<Attempt>(),
            std::mem::size_of::<Phase>(),
            std::mem::size_of::<StreamMachine>()
        );
        // 584: 576 plus the pointer to the LLM timeline (`--openai`), boxed so other runs pay only the pointer.
        // 600: the connection's pointer to its TLS session (boxed for the same reason), and 8 B of layout with it.
        assert!(size <= 600, "virtual_user future is {size} bytes");
    }
}
