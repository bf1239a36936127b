//! One core's share of a run: its virtual users, their sockets, and its recorder. The only client code that awaits IO.
//!
//! `run` (here) sets a core up and hands it to the driver of its load shape (`drive`), which spawns the virtual
//! users (`user`); a user runs each stream as an `attempt`, with `--scenario` between the steps of its `journey`,
//! while the core's `sweep` task enforces the timeouts and the end of the run. All of them share one
//! `core::CoreCtx`. The files import each other by `crate::worker::x` paths and only one way:
//! `drive -> user -> {attempt, journey} -> core -> hop` and `sweep -> core`; nothing imports this file.

mod attempt;
mod core;
mod drive;
mod hop;
mod journey;
mod sweep;
mod user;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use crate::plan::Shard;
use crate::recorder::{DeliveryClock, LlmRecorder, Recorder};
use crate::template::TargetRequest;
use crate::worker::core::{Core, CoreCtx, JourneyState, SAMPLE_PERIOD, Slot, SweepPlan};
use crate::worker::core::{Snapshots, StreamsLog};
use crate::worker::drive::{drive_arrivals, drive_stages, drive_users};
use crate::worker::sweep::{rest_gate, snapshot_intervals, sweep};

pub use crate::worker::core::{IntervalLink, RunShared, StreamsLogLink, Timing};

/// Bytes one `recv` may return; one buffer per core, shared by all its streams.
const SCRATCH_BYTES: usize = 64 * 1024;

/// Samples reserved up front: one day at one per 100 ms.
const MAX_RESERVED_SAMPLES: usize = 24 * 3600 * 10;

/// Runs a shard to its end (quota used up or deadline passed) and returns its recorders: one per
/// `--stages` stage, or one for the whole run.
///
/// Everything the core needs is allocated first; then it reports `ready` and blocks until the
/// engine sends the run's clock (after measuring memory with nothing connected). Blocking is
/// fine there: nothing else runs on this runtime yet.
pub async fn run(
    shard: Shard,
    shared: Arc<RunShared>,
    ready: Sender<()>,
    go: Receiver<Timing>,
    mut intervals: IntervalLink,
) -> Vec<Recorder> {
    let new_recorder = || {
        let mut rec = Recorder::new();
        if let Some(stall) = shared.cfg.stall_threshold {
            rec.stall_threshold_us = stall.as_micros() as u64;
        }
        if let Some(send_time) = &shared.cfg.send_time {
            // The wall clock once, then the monotonic one: a receipt's wall time costs an addition per event.
            let (origin, origin_unix_us) = (std::time::Instant::now(), crate::units::unix_micros());
            rec.delivery = Some(Box::new(DeliveryClock::new(send_time.clone(), origin, origin_unix_us)));
        }
        if let Some(llm) = &shared.cfg.llm {
            rec.llm = Some(Box::new(LlmRecorder::new(llm.turns(), llm.step_names().len())));
        }
        // Room for every sample of the run, so sampling never allocates mid-run. Capped: a run
        // of days reserves a day and grows past it (once per 100 ms, not per event).
        if let Some(length) = shared.length {
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
        redirects: Default::default(),
        streams_left: shard.streams_quota,
        user_limit: shard.virtual_users,
        spare_recs: (1..stages).map(|_| new_recorder()).collect(),
        done_recs: Vec::with_capacity(stages),
        free_slots: (0..shard.virtual_users).rev().collect(),
        connecting: 0,
        pausing: 0,
        stopping: false,
        finished: false,
        resting: Vec::with_capacity(shard.virtual_users),
        gate: None,
        rest_round: 0,
        streams_log: intervals
            .streams_log
            .take()
            .map(|link| Box::new(StreamsLog::new(link, shard.core_index, shard.virtual_users))),
        snapshots: Some(Box::new(Snapshots::new(intervals, shard.core_index))),
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
        // Users and arrivals are numbered over every core of the run, those of other `--shard` processes too.
        core_index: shard.global_core,
        threads: shard.global_threads,
        slots,
        journeys,
        shared,
        timing,
        sweep: SweepPlan::new(),
    });
    if let Some(snapshots) = ctx.core.borrow_mut().snapshots.as_deref_mut() {
        snapshots.start();
    }
    monoio::spawn(sweep(ctx.clone()));
    monoio::spawn(rest_gate(ctx.clone()));
    let every = ctx.shared.cfg.report_interval;
    monoio::spawn(snapshot_intervals(ctx.clone(), every));
    match &shard.arrivals {
        Some(clock) => drive_arrivals(&ctx, clock.clone()).await,
        None if !shard.stage_users.is_empty() => drive_stages(&ctx, &shard.stage_users).await,
        None => drive_users(&ctx, &shard).await,
    }
    let mut core = ctx.core.borrow_mut();
    core.finished = true;
    let now = Instant::now();
    let elapsed = now - timing.start;
    core.rec.level_until(ctx.sample_tick(now));
    core.finish_snapshots((elapsed.as_nanos() / every.as_nanos()) as usize, elapsed.as_micros() as u64);
    let last = std::mem::take(&mut core.rec);
    let mut recorders = std::mem::take(&mut core.done_recs);
    recorders.push(last);
    recorders
}

/// Bytes of an encoded request's head, where `Last-Event-ID` goes (0 for a template: its buffers grow on first use).
fn encoded_len(request: &TargetRequest) -> usize {
    match request {
        TargetRequest::Encoded { head, .. } => head.len(),
        TargetRequest::Template(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::stream::StreamMachine;
    use crate::worker::attempt::{Attempt, Phase};
    use crate::worker::core::test_ctx;
    use crate::worker::user::virtual_user;

    /// Every open stream is one of these futures on the heap: its size is most of the
    /// generator's memory per stream, so it has a budget.
    #[test]
    fn virtual_user_future_stays_small() {
        let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
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
        // Still 600 with the pointer to a compressed body's decompressor: the chunked decoder's counters became u32.
        // 608: the TLS session became `wire::Tls`, a tag beside the box (rustls until the first answer, the record
        // keys after), which saves an HTTPS stream 8 KB.
        assert!(size <= 608, "virtual_user future is {size} bytes");
    }
}
