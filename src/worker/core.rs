//! One core's state, shared by its tasks: the run's read-only inputs and clock, each virtual user's `Slot` (its
//! socket and deadlines, watched by the sweeper) and `JourneyState`, the connection registered in a slot (`Conn`),
//! and the core's mutable `Core` inside the `CoreCtx` that every task holds.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::config::RunConfig;
use crate::plan::StageWindow;
use crate::recorder::{Failure, Recorder, StreamEnd};
use crate::streams_log::{BUFFERS_PER_CORE, RECORDS_PER_BUFFER, StreamRecord};
use crate::sys;
use crate::template::{RequestTemplate, TargetRequest};
use crate::timeline::{Interval, SNAPSHOTS_PER_CORE};
use crate::units::micros_between;
use crate::worker::hop::Redirects;

/// What every worker shares read-only.
pub struct RunShared {
    pub cfg: RunConfig,
    /// One request per target: encoded once, or a template rendered for each stream.
    pub requests: Vec<TargetRequest>,
    /// `--scenario`: each target's HTTP step requests, in step order (where a step goes: `LlmConfig::step_targets`).
    pub steps: Vec<Vec<RequestTemplate>>,
    /// `--scenario`: for each step, the index in a journey's `extracted` of each value it extracts.
    pub extract_slots: Vec<Vec<usize>>,
    /// From the plan: `--stages` windows on the run's clock (empty without stages), the run's length from the
    /// start, and whether it is the open model. Workers read these; they never derive them from `cfg` again.
    pub windows: Vec<StageWindow>,
    pub length: Option<Duration>,
    pub open_model: bool,
}

/// The run's clock, handed to every worker once all of them are ready.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The common start: connect-rate offsets and samples count from it.
    pub start: Instant,
    pub deadline: Option<Instant>,
}

/// A user's place in its `--scenario` journey. One per user, allocated up front; the buffers grow with the
/// conversation (bounded by turns x (prompt + `MAX_ANSWER_BYTES`)).
#[derive(Debug, Default)]
pub(crate) struct JourneyState {
    /// The turn the next stream is (index 0 is turn 1); 0 also means the journey starts over.
    pub(crate) turn: u32,
    /// The conversation so far: chat message objects joined by commas.
    pub(crate) history: Vec<u8>,
    /// Values the HTTP steps extracted, by the scenario's variable index.
    pub(crate) extracted: Vec<Vec<u8>>,
}

/// Why the sweeper shut a virtual user's socket down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
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
    pub(crate) fn end(self) -> StreamEnd {
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
pub(crate) struct Slot {
    /// The socket the user holds now; -1 when none.
    pub(crate) fd: Cell<RawFd>,
    /// Milliseconds after the start when the current phase times out (connect, head, first
    /// event, next event), and which timeout that is; 0 when none applies.
    pub(crate) deadline_ms: Cell<u64>,
    pub(crate) deadline: Cell<Expiry>,
    /// Milliseconds after the start when the connection has gone too long without a byte; 0: none.
    pub(crate) byte_deadline_ms: Cell<u64>,
    /// Milliseconds after the start when the stream reaches its `--stream-duration`; 0: none.
    pub(crate) session_deadline_ms: Cell<u64>,
    pub(crate) expired: Cell<Option<Expiry>>,
    /// A task runs this user (or open-model stream) now.
    pub(crate) running: Cell<bool>,
    /// Open model: when this slot's stream is due, in µs after the start, and the arrival's
    /// run-wide number (its `{{vu}}`: each arrival is a new user).
    pub(crate) due_us: Cell<u64>,
    pub(crate) arrival: Cell<u64>,
    /// A [`Pause`] between streams: milliseconds after the start when it ends (0: none), and the user's waker, which
    /// the sweeper wakes then.
    pub(crate) pause_until_ms: Cell<u64>,
    pub(crate) pause_waker: Cell<Option<Waker>>,
}

impl Slot {
    pub(crate) fn new() -> Slot {
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
            pause_until_ms: Cell::new(0),
            pause_waker: Cell::new(None),
        }
    }

    /// Wakes a user paused in this slot, its pause over or the run's; the sweeper's, on its own thread.
    pub(crate) fn end_pause(&self, core: &mut Core) {
        if let Some(waker) = self.clear_pause(core) {
            waker.wake();
        }
    }

    /// Clears a pending pause from the slot and the core's count; its waker, if one was pending.
    fn clear_pause(&self, core: &mut Core) -> Option<Waker> {
        if self.pause_until_ms.replace(0) == 0 {
            return None;
        }
        core.pausing -= 1;
        self.pause_waker.take()
    }

    /// Arms the phase timeout `kind` to fire `after` from `now`, or clears it when `after` is None.
    pub(crate) fn arm(&self, ctx: &CoreCtx, kind: Expiry, now: Instant, after: Option<Duration>) {
        self.deadline.set(kind);
        self.deadline_ms.set(ctx.deadline_ms(now, after));
    }

    /// Clears every deadline (the stream is over, or expired).
    pub(crate) fn disarm(&self) {
        self.deadline_ms.set(0);
        self.byte_deadline_ms.set(0);
        self.session_deadline_ms.set(0);
    }

    pub(crate) fn expire(&self, kind: Expiry) {
        self.disarm();
        self.expired.set(Some(kind));
        sys::shutdown(self.fd.get());
    }
}

/// A connection registered in its user's slot so the sweeper can shut it down. The slot is
/// cleared before the descriptor closes, so a descriptor number reused by another socket (on any
/// core) is never touched.
pub(crate) struct Conn<'s> {
    pub(crate) stream: TcpStream,
    slot: &'s Slot,
    /// `https://`: the TLS session on this connection (its state boxed: plain streams pay a few words for it).
    pub(crate) tls: Option<crate::wire::Tls>,
}

impl<'s> Conn<'s> {
    pub(crate) fn new(stream: TcpStream, slot: &'s Slot) -> Conn<'s> {
        slot.fd.set(stream.as_raw_fd());
        Conn { stream, slot, tls: None }
    }
}

/// The TLS session of the connection, if it has one.
pub(crate) fn tls_of<'c>(conn: &'c mut Option<Conn<'_>>) -> Option<&'c mut crate::wire::Tls> {
    conn.as_mut().and_then(|c| c.tls.as_mut())
}

/// The descriptor of the connection, or -1 (calls on it then fail with EBADF) when there is none.
pub(crate) fn raw_fd(conn: &Option<Conn<'_>>) -> RawFd {
    conn.as_ref().map_or(-1, |c| c.stream.as_raw_fd())
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        self.slot.fd.set(-1);
    }
}

/// The per-core mutable state. One `RefCell` borrow per read; never held across an await.
pub(crate) struct Core {
    pub(crate) rec: Recorder,
    pub(crate) scratch: Box<[u8]>,
    /// A request with a `Last-Event-ID` header, built here for each write (`--reconnect`).
    pub(crate) request_buf: Vec<u8>,
    /// A templated request rendered for one stream, and its body (rendered first, for its length).
    pub(crate) render_buf: Vec<u8>,
    pub(crate) body_buf: Vec<u8>,
    /// Each redirected stream's current hop, and the names redirects resolved.
    pub(crate) redirects: Redirects,
    /// Streams this core may still start; `None` is unlimited.
    pub(crate) streams_left: Option<u64>,
    /// Users `0..user_limit` may start streams; the others end at their next start (`--stages`).
    pub(crate) user_limit: usize,
    /// `--stages`: recorders for the stages to come (allocated up front) and the finished ones.
    pub(crate) spare_recs: Vec<Recorder>,
    pub(crate) done_recs: Vec<Recorder>,
    /// `--arrival-rate`: slots with no stream, taken by arrivals.
    pub(crate) free_slots: Vec<usize>,
    /// Connects waiting for their TCP or TLS handshake, and users in a [`Pause`], so the sweeper scans only when
    /// there are some.
    pub(crate) connecting: u32,
    pub(crate) pausing: u32,
    /// The run is over: no new streams.
    pub(crate) stopping: bool,
    pub(crate) finished: bool,
    /// Users that spent their read budget and wait for the core's `rest_gate` to let them go ([`Rest`]): one waker
    /// per user at most, room reserved up front. The gate's own waker, while it waits for the first of them; and
    /// how many times it has let them go.
    pub(crate) resting: Vec<Waker>,
    pub(crate) gate: Option<Waker>,
    pub(crate) rest_round: u32,
    /// `--report-interval`: the core's interval snapshots (`None` where the engine collects none: unit tests).
    pub(crate) snapshots: Option<Box<Snapshots>>,
    /// `--streams-log`: the figures of each user's stream under way and the records of ended ones (`None` without
    /// the flag: a run without it pays one branch per stream event of interest and nothing else).
    pub(crate) streams_log: Option<Box<StreamsLog>>,
}

/// The two ends of a core's link to the engine's interval collector: full snapshots go out on one channel (shared by
/// every core), emptied ones come back on the core's own. Both bounded: a send never allocates.
pub struct IntervalLink {
    pub to_collector: SyncSender<Interval>,
    pub back: Receiver<Interval>,
    /// `--streams-log`: where the core's full record buffers go, and where they come back emptied.
    pub streams_log: Option<StreamsLogLink>,
}

/// A core's link to the `--streams-log` writer: full buffers out (with the core's index), emptied ones back. Both
/// bounded, so a send never waits and never allocates.
pub struct StreamsLogLink {
    pub to_writer: SyncSender<(usize, Vec<StreamRecord>)>,
    pub back: Receiver<Vec<StreamRecord>>,
}

/// One core's `--streams-log` records: a record per ended stream appended to `records`, reserved up front for
/// `RECORDS_PER_BUFFER` and never grown, handed to the writer at each interval's end (`hand_off`, by the same timer
/// task as the interval snapshot) for an emptied one. A record that finds the buffer full is dropped and counted:
/// the core never waits for the writer.
pub(crate) struct StreamsLog {
    /// Per user (slot index): the figures of its stream under way, filled in as it goes.
    pub(crate) current: Box<[StreamRecord]>,
    records: Vec<StreamRecord>,
    spares: Vec<Vec<StreamRecord>>,
    link: StreamsLogLink,
    core: usize,
    dropped: u64,
}

impl StreamsLog {
    pub(crate) fn new(link: StreamsLogLink, core: usize, users: usize) -> StreamsLog {
        StreamsLog {
            current: vec![StreamRecord::EMPTY; users].into_boxed_slice(),
            records: Vec::with_capacity(RECORDS_PER_BUFFER),
            spares: (1..BUFFERS_PER_CORE).map(|_| Vec::with_capacity(RECORDS_PER_BUFFER)).collect(),
            link,
            core,
            dropped: 0,
        }
    }

    /// One ended stream; dropped (and counted) if the buffer is full.
    pub(crate) fn push(&mut self, record: StreamRecord) {
        if self.records.len() < RECORDS_PER_BUFFER {
            self.records.push(record);
        } else {
            self.dropped += 1;
        }
    }

    /// Sends the records gathered so far to the writer, if it has handed an emptied buffer back; else they stay
    /// (and the buffer fills on).
    fn hand_off(&mut self) {
        if self.records.is_empty() {
            return;
        }
        while let Ok(back) = self.link.back.try_recv() {
            debug_assert!(back.is_empty() && back.capacity() >= RECORDS_PER_BUFFER);
            self.spares.push(back);
        }
        let Some(spare) = self.spares.pop() else { return };
        let full = std::mem::replace(&mut self.records, spare);
        if let Err(TrySendError::Full((_, full)) | TrySendError::Disconnected((_, full))) =
            self.link.to_writer.try_send((self.core, full))
        {
            let spare = std::mem::replace(&mut self.records, full);
            self.spares.push(spare);
        }
    }

    /// The core's last records go out; returns the streams the core left out of the log. The channel has room: a
    /// core has at most `BUFFERS_PER_CORE - 1` buffers out while it holds one.
    fn finish(mut self) -> u64 {
        let left = self.records.len() as u64;
        if !self.records.is_empty() && self.link.to_writer.try_send((self.core, self.records)).is_err() {
            self.dropped += left;
        }
        self.dropped
    }
}

/// One core's interval snapshots, taken by its `sweep::snapshot_intervals` task (and once more at its end), never
/// per event: the hot path records into `Core::rec` only, and an interval is the difference of that recorder from
/// `base`, its figures at the last snapshot. Memory is fixed: `current`, `base` and `SNAPSHOTS_PER_CORE - 1` spares,
/// allocated when the worker starts and passed around, never grown.
pub(crate) struct Snapshots {
    /// The interval being gathered: a stage's last figures wait here (`fold_stage_end`) until the next snapshot.
    current: Interval,
    base: Interval,
    spares: Vec<Interval>,
    link: IntervalLink,
    core: usize,
    next_index: usize,
    /// The thread's CPU time and the clock at the last snapshot sent (or the run's start), for the core's busy share.
    cpu_at_us: u64,
    cpu_since: Instant,
}

impl Snapshots {
    pub(crate) fn new(link: IntervalLink, core: usize) -> Snapshots {
        Snapshots {
            current: Interval::new(),
            base: Interval::new(),
            spares: (1..SNAPSHOTS_PER_CORE).map(|_| Interval::new()).collect(),
            link,
            core,
            next_index: 0,
            cpu_at_us: 0,
            cpu_since: Instant::now(),
        }
    }

    /// The run's clock starts: the core's busy share is measured from here.
    pub(crate) fn start(&mut self) {
        (self.cpu_at_us, self.cpu_since) = (sys::thread_cpu_us(), Instant::now());
    }

    /// The core's busy share since the last snapshot sent, in millionths (a thread's CPU time cannot pass the wall
    /// time; capped in case the two clocks disagree), and the CPU time and clock it was read at.
    fn busy_ppm(&self) -> (u32, u64, Instant) {
        let (cpu_us, now) = (sys::thread_cpu_us(), Instant::now());
        let wall_us = micros_between(self.cpu_since, now).max(1);
        let busy = (cpu_us.saturating_sub(self.cpu_at_us) * 1_000_000 / wall_us).min(1_000_000);
        (busy as u32, cpu_us, now)
    }

    /// `--stages`: the core is about to set `rec` aside for a fresh recorder (all zeros); what `rec` gathered since
    /// the last snapshot joins the current interval.
    pub(crate) fn fold_stage_end(&mut self, rec: &Recorder) {
        self.current.add_since(rec, &mut self.base);
        self.base.clear();
    }

    /// Ends interval `index` (or a later one, if that index was sent already) at `end_us` and sends it. With no
    /// spare back from the collector yet (it is behind), the interval's figures stay and join the next one: the
    /// timeline coarsens, memory never grows.
    /// Returns the core's busy share over the span measured, in millionths.
    fn take(&mut self, rec: &Recorder, stage: usize, index: usize, end_us: u64, loop_lag_us: u64) -> u32 {
        self.current.add_since(rec, &mut self.base);
        let index = index.max(self.next_index);
        self.next_index = index + 1;
        let (busy_ppm, cpu_us, now) = self.busy_ppm();
        self.current.busy_ppm = self.current.busy_ppm.max(busy_ppm);
        self.current.loop_lag_us = self.current.loop_lag_us.max(loop_lag_us);
        self.current.saturated |= crate::recorder::interval_saturated(busy_ppm, loop_lag_us);
        while let Ok(back) = self.link.back.try_recv() {
            self.spares.push(back);
        }
        let Some(spare) = self.spares.pop() else { return busy_ppm };
        (self.cpu_at_us, self.cpu_since) = (cpu_us, now);
        let mut full = std::mem::replace(&mut self.current, spare);
        stamp(&mut full, rec, stage, index, end_us, self.core);
        if let Err(TrySendError::Full(full) | TrySendError::Disconnected(full)) = self.link.to_collector.try_send(full)
        {
            let spare = std::mem::replace(&mut self.current, full);
            self.spares.push(spare);
        }
        busy_ppm
    }

    /// The core's last snapshot, from its last one to its end (`end_us`), marked last. The channel has room for it:
    /// it holds `SNAPSHOTS_PER_CORE` per core, and a core never has more out.
    fn finish(mut self, rec: &Recorder, stage: usize, index: usize, end_us: u64) {
        self.current.add_since(rec, &mut self.base);
        // The run's last, partial interval is not timed for load: it holds the end's teardown (every stream shut
        // down), which is the end, not load, and may be a few milliseconds long.
        let mut last = self.current;
        stamp(&mut last, rec, stage, index.max(self.next_index), end_us, self.core);
        last.last = true;
        let _ = self.link.to_collector.send(last);
    }
}

/// Labels a snapshot about to go to the collector: its interval and end, the stage and open streams now, its core.
fn stamp(snapshot: &mut Interval, rec: &Recorder, stage: usize, index: usize, end_us: u64, core: usize) {
    (snapshot.index, snapshot.end_us, snapshot.stage, snapshot.open_streams, snapshot.core) =
        (index, end_us, stage, rec.active, core);
}

impl Core {
    /// Sends interval `index`, ending `end_us` after the start, to the engine's collector, with the core's load: its
    /// busy share, and `loop_lag_us`, how late the timer that called this fired.
    pub(crate) fn snapshot(&mut self, index: usize, end_us: u64, loop_lag_us: u64) {
        if let Some(log) = &mut self.streams_log {
            log.hand_off();
        }
        let stage = self.done_recs.len();
        if let Some(snapshots) = &mut self.snapshots {
            let busy_ppm = snapshots.take(&self.rec, stage, index, end_us, loop_lag_us);
            self.rec.note_load(busy_ppm, loop_lag_us);
        }
    }

    /// Sends the core's last, partial interval (call before handing its recorders back).
    pub(crate) fn finish_snapshots(&mut self, index: usize, end_us: u64) {
        if let Some(log) = self.streams_log.take() {
            self.rec.streams_log_dropped += log.finish();
        }
        let stage = self.done_recs.len();
        if let Some(snapshots) = self.snapshots.take() {
            snapshots.finish(&self.rec, stage, index, end_us);
        }
    }

    /// `--streams-log`: the figures of user `local`'s stream under way (`None` without the flag).
    pub(crate) fn stream_facts(&mut self, local: usize) -> Option<&mut StreamRecord> {
        self.streams_log.as_deref_mut().map(|log| &mut log.current[local])
    }

    pub(crate) fn take_stream_slot(&mut self) -> bool {
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

/// The period of the shared sampling clock of open streams (`Recorder::level_until`), for the cross-core peak.
pub(crate) const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// What a core's tasks share. Virtual users hold one `Rc` of it and their index: no timers of
/// their own (a monoio `Sleep` is 640 bytes), so an idle user costs little more than its parser.
pub(crate) struct CoreCtx {
    pub(crate) core: RefCell<Core>,
    /// This core's place among `threads`: user `local` here is user `local * threads + core_index`
    /// of the run, which picks its target and source address.
    pub(crate) core_index: usize,
    pub(crate) threads: usize,
    pub(crate) slots: Box<[Slot]>,
    /// `--scenario`: one journey per slot; empty otherwise.
    pub(crate) journeys: Box<[RefCell<JourneyState>]>,
    pub(crate) shared: Arc<RunShared>,
    pub(crate) timing: Timing,
    /// When the sweeper wakes next.
    pub(crate) sweep: SweepPlan,
}

/// The sweeper's plan: it sleeps until the earliest deadline pending, and a deadline set earlier than that wakes it
/// to plan again. No timer per stream, and no wake-up when nothing is due.
pub(crate) struct SweepPlan {
    /// Milliseconds after the start of the earliest deadline the sweeper knows of; u64::MAX when none.
    pub(crate) at_ms: Cell<u64>,
    /// The sleeping sweeper's waker.
    pub(crate) waker: Cell<Option<Waker>>,
}

impl SweepPlan {
    pub(crate) fn new() -> SweepPlan {
        SweepPlan { at_ms: Cell::new(u64::MAX), waker: Cell::new(None) }
    }
}

impl CoreCtx {
    /// Returns the slot deadline `deadline_ms` (0: none) it was given, after waking the sweeper if it falls before
    /// the sweeper's plan. Deadlines that move later (most: each event pushes the idle timeout on) cost a compare:
    /// the sweeper, woken at the earlier one, finds them moved and plans again.
    pub(crate) fn due_at(&self, deadline_ms: u64) -> u64 {
        if deadline_ms != 0 && deadline_ms < self.sweep.at_ms.get() {
            self.sweep.at_ms.set(deadline_ms);
            if let Some(waker) = self.sweep.waker.take() {
                waker.wake();
            }
        }
        deadline_ms
    }

    /// The sampling boundaries (`Recorder::level_until`) passed at `now`.
    pub(crate) fn sample_tick(&self, now: Instant) -> usize {
        (now.saturating_duration_since(self.timing.start).as_nanos() / SAMPLE_PERIOD.as_nanos()) as usize
    }

    /// Target index and source address of this core's user `local`: targets rotate fastest, so
    /// every (source, target) pair gets its share of users and of ports.
    pub(crate) fn endpoint(&self, local: usize) -> (usize, Option<IpAddr>) {
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
    pub(crate) fn stream_length(&self, slot: &Slot, local: usize, seq: u32) -> Option<Duration> {
        let (low, high) = self.shared.cfg.stream_duration?;
        Some(crate::rng::uniform_duration(low, high, self.shared.cfg.seed, self.vu(slot, local), seq))
    }

    /// User `local` may start a stream: `--stages` has not stepped down past it.
    pub(crate) fn may_start(&self, local: usize) -> bool {
        local < self.core.borrow().user_limit
    }

    /// `{{vu}}` of the stream in `slot`: the run-wide user index, or in the open model the
    /// arrival's number.
    pub(crate) fn vu(&self, slot: &Slot, local: usize) -> u64 {
        if self.shared.open_model { slot.arrival.get() } else { self.global_index(local) as u64 }
    }

    /// Whose TLS session user `local`'s connections resume and keep: its run-wide index. None in the open
    /// model, where every arrival is a new user with nothing to resume.
    pub(crate) fn tls_user(&self, local: usize) -> Option<u64> {
        (!self.shared.open_model).then(|| self.global_index(local) as u64)
    }

    /// The run-wide index of this core's user `local`.
    pub(crate) fn global_index(&self, local: usize) -> usize {
        local * self.threads + self.core_index
    }

    /// No new stream or connection may start at `now`: the sweeper stopped the run, or its
    /// deadline passed (checked directly too: timers fire only when the run queue drains).
    pub(crate) fn run_over(&self, now: Instant) -> bool {
        self.core.borrow().stopping || self.timing.deadline.is_some_and(|d| now >= d)
    }

    pub(crate) fn ms_since_start(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.timing.start).as_millis() as u64
    }

    /// A slot deadline `after` from `now`, in ms since the start (never 0, which means none);
    /// 0 when `after` is None. Rounded up: the sweeper compares it with the time truncated to the millisecond, so a
    /// truncated deadline could fire up to 1 ms early (a 20 ms reconnect wait ended after 19.7 ms).
    ///
    /// Every slot deadline is made here, so this is where the sweeper hears of one earlier than its plan
    /// (`due_at`).
    pub(crate) fn deadline_ms(&self, now: Instant, after: Option<Duration>) -> u64 {
        self.due_at(after.map_or(0, |after| {
            let micros = (now + after).saturating_duration_since(self.timing.start).as_micros();
            (micros.div_ceil(1000) as u64).max(1)
        }))
    }
}

/// Sleeps until `at`; false if the run ended first (its deadline, or Ctrl-C: noticed within
/// 100 ms, however far off `at` is, so a slow ramp cannot hold the report back).
pub(crate) async fn wait_until(ctx: &CoreCtx, at: Instant) -> bool {
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

/// A user's wait between streams (a reconnect's `retry`, the pause after a failure that never waited), ended by the
/// core's sweeper: no timer per user. A monoio `Sleep` is 640 B, and boxed per wait it made a reconnect wave of
/// 10,000 users take ~5 MB that stayed resident; this holds a deadline and a waker in the user's slot, allocated
/// up front. It ends within the sweeper's least spacing (10 ms) of its time. Ready with false when the run ended first.
pub(crate) struct Pause<'c> {
    ctx: &'c CoreCtx,
    slot: &'c Slot,
    until_ms: u64,
}

impl Pause<'_> {
    pub(crate) fn new<'c>(ctx: &'c CoreCtx, slot: &'c Slot, after: Duration) -> Pause<'c> {
        Pause { ctx, slot, until_ms: ctx.deadline_ms(Instant::now(), Some(after)) }
    }
}

impl std::future::Future for Pause<'_> {
    type Output = bool;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let now = Instant::now();
        let (ctx, slot) = (self.ctx, self.slot);
        let over = ctx.run_over(now);
        if over || ctx.ms_since_start(now) >= self.until_ms {
            // Woken by the sweeper, which cleared the pause; or done at once, or the run's end came first.
            slot.end_pause(&mut ctx.core.borrow_mut());
            return Poll::Ready(!over);
        }
        if slot.pause_until_ms.replace(self.until_ms) == 0 {
            ctx.core.borrow_mut().pausing += 1;
        }
        slot.pause_waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        // A pause dropped unfinished (its task ended) leaves nothing for the sweeper to wake.
        if self.slot.pause_until_ms.get() != 0 {
            self.slot.clear_pause(&mut self.ctx.core.borrow_mut());
        }
    }
}

/// A user's task rests until the core's `rest_gate` lets the resting users go, which it does once monoio has had a
/// turn at its timers and IO (see `rest_gate`): a stream that always has data cannot keep the sweeper from running.
/// No allocation: the waker goes into room reserved when the core started.
pub(crate) struct Rest<'c> {
    ctx: &'c CoreCtx,
    /// The gate's round when this rest began; None before the first poll.
    round: Option<u32>,
}

impl Rest<'_> {
    pub(crate) fn new(ctx: &CoreCtx) -> Rest<'_> {
        Rest { ctx, round: None }
    }
}

impl std::future::Future for Rest<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = self.ctx.core.borrow_mut();
        match self.round {
            None => {
                let round = core.rest_round;
                debug_assert!(core.resting.len() < core.resting.capacity(), "one resting waker per user");
                core.resting.push(cx.waker().clone());
                if let Some(gate) = core.gate.take() {
                    gate.wake();
                }
                drop(core);
                self.round = Some(round);
                Poll::Pending
            }
            Some(round) if round != core.rest_round => Poll::Ready(()),
            // Polled before the gate opened (a stale wake-up): its waker is still on the list.
            Some(_) => Poll::Pending,
        }
    }
}

/// The least a test of a user or a stream attempt needs: a core with one user against `target`, whose request is
/// `request` (encoded once), reading into a scratch buffer of `scratch_bytes`.
#[cfg(test)]
pub(crate) fn test_ctx(target: std::net::SocketAddr, request: &[u8], scratch_bytes: usize) -> std::rc::Rc<CoreCtx> {
    let target = crate::config::Target { addr: target, host_header: "h".into(), path: "/".into(), tls_name: None };
    let cfg = RunConfig { max_event_size_bytes: 1024, threads: 1, ..RunConfig::new(vec![target]) };
    let core = Core {
        rec: Recorder::new(),
        scratch: vec![0; scratch_bytes].into_boxed_slice(),
        request_buf: Vec::new(),
        render_buf: Vec::new(),
        body_buf: Vec::new(),
        redirects: Redirects::default(),
        streams_left: None,
        user_limit: 1,
        spare_recs: Vec::new(),
        done_recs: Vec::new(),
        free_slots: Vec::new(),
        connecting: 0,
        pausing: 0,
        stopping: false,
        finished: false,
        resting: Vec::with_capacity(1),
        gate: None,
        rest_round: 0,
        snapshots: None,
        streams_log: None,
    };
    let timing = Timing { start: Instant::now(), deadline: None };
    let shared = Arc::new(RunShared {
        cfg,
        requests: vec![TargetRequest::Encoded { head: request.to_vec(), body: Arc::default() }],
        steps: Vec::new(),
        extract_slots: Vec::new(),
        windows: Vec::new(),
        length: None,
        open_model: false,
    });
    std::rc::Rc::new(CoreCtx {
        core: RefCell::new(core),
        core_index: 0,
        threads: 1,
        slots: vec![Slot::new()].into(),
        journeys: Box::new([]),
        shared,
        timing,
        sweep: SweepPlan::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use crate::streams_log::{BUFFERS_PER_CORE, RECORDS_PER_BUFFER, StreamRecord};
    use crate::worker::core::{StreamsLog, StreamsLogLink};

    /// A core never waits for the `--streams-log` writer and never grows its buffers: a record that finds the buffer
    /// full is counted as dropped; with no emptied buffer back, records stay and go out with the next hand-off; the
    /// last ones go out at the end, and every record is either sent or counted.
    #[test]
    fn a_full_or_unreturned_buffer_drops_and_counts() {
        let (to_writer, from_core) = sync_channel(BUFFERS_PER_CORE);
        let (back_tx, back) = sync_channel(BUFFERS_PER_CORE);
        let mut log = StreamsLog::new(StreamsLogLink { to_writer, back }, 3, 1);
        let record = |stream| StreamRecord { stream, ..StreamRecord::EMPTY };
        for stream in 0..RECORDS_PER_BUFFER as u32 + 5 {
            log.push(record(stream));
        }
        assert_eq!(
            (log.records.len(), log.records.capacity(), log.dropped),
            (RECORDS_PER_BUFFER, RECORDS_PER_BUFFER, 5)
        );
        log.hand_off();
        let (core, mut sent) = from_core.try_recv().expect("a spare was there: the full buffer went out");
        assert_eq!((core, sent.len(), sent[1].stream), (3, RECORDS_PER_BUFFER, 1));
        // The writer has not handed it back: the next records wait in the buffer the core holds.
        log.push(record(7));
        log.hand_off();
        assert!(from_core.try_recv().is_err());
        sent.clear();
        back_tx.send(sent).unwrap();
        log.push(record(8));
        log.hand_off();
        let (_, sent) = from_core.try_recv().expect("the emptied buffer came back");
        assert_eq!(sent.iter().map(|r| r.stream).collect::<Vec<_>>(), [7, 8]);
        log.push(record(9));
        assert_eq!(log.finish(), 5);
        assert_eq!(from_core.try_recv().unwrap().1.len(), 1);
    }
}
